"""A real judge for the integration tests: `transformers serve` with SmolLM2-135M on 127.0.0.1.

No mocks: the servers below are the real `transformers serve` processes; tests kill them to
inject faults.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from judge_server import LocalJudgeServer


def _start_judge(folder: Path) -> LocalJudgeServer:
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.fail("The judge tests need `transformers serve`: pip install 'affect-rl[serving]'")
    from affect_rl.models import resolve_model_path

    server = LocalJudgeServer(
        resolve_model_path("smollm2-135m-instruct"),
        # Measured with bench/judge.py on a shared 2-core CPU: continuous batching scored a batch
        # of 8 at concurrency 4 in 16 s against 32 s without it, and one torch thread was several
        # times faster than torch's default there.
        continuous_batching=True,
        threads=1,
        log_path=folder / "server.log",
    )
    return server.start()


@pytest.fixture(scope="session")
def judge_server(tmp_path_factory):
    """One judge for the whole session (each start loads the model and costs seconds)."""
    server = _start_judge(tmp_path_factory.mktemp("judge"))
    yield server
    server.stop()


@pytest.fixture
def disposable_judge_server(tmp_path_factory):
    """A judge of the test's own, for tests that kill it."""
    server = _start_judge(tmp_path_factory.mktemp("disposable-judge"))
    yield server
    server.stop()
