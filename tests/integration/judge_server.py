"""``transformers serve`` on 127.0.0.1 as a judge process: the CPU stand-in for ``vllm serve``.

Only the integration tests and ``bench/judge.py`` start judges from Python (training talks to a
server started by ``launch/judge/serve_local.sh`` or ``serve_vllm.sh``), so the process manager
lives here, not in the ``rewards`` package. Import it as ``from judge_server import
LocalJudgeServer`` with this folder on ``sys.path`` (pytest puts it there; the benchmark adds it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from rewards.errors import EnvironmentProblem

# A paged KV cache of 64 blocks and 2048 tokens per forward pass: 1.9 GB resident for the 135M
# model, room for several ~500-token judge prompts at once (more requests queue).
CB_FLAGS = ("--cb-num-blocks", "64", "--cb-max-batch-tokens", "2048")


class LocalJudgeServer:
    """``transformers serve MODEL`` on 127.0.0.1; ``start()`` blocks until ``/health`` answers.

    ``continuous_batching`` turns on the server's paged-attention batching; without it the
    server runs one ``generate`` at a time. Its KV cache is bounded by CB_FLAGS: on a CPU
    `transformers serve` otherwise sizes the cache from the machine's whole RAM (measured: 13.7 GB
    resident for the 135M model, and the OOM killer took it). ``threads`` sets OMP_NUM_THREADS:
    on a CPU shared with other jobs one thread was 3-4x faster than torch's default (measured:
    ~6 s instead of 20-40 s per judge request on a loaded 2-core machine).
    """

    def __init__(self, model: str, continuous_batching: bool = True, threads: int | None = None, log_path=None):
        self.model = model
        self.port = free_port()
        self.continuous_batching = continuous_batching
        self.threads = threads
        self.log_path = Path(log_path) if log_path else None
        self.process = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        executable = shutil.which("transformers") or str(Path(sys.executable).parent / "transformers")
        batching = ["--continuous-batching", *CB_FLAGS] if self.continuous_batching else ["--no-continuous-batching"]
        return [executable, "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port),
                "--device", "cpu", *batching, "--log-level", "info"]  # fmt: skip

    def start(self, timeout: float = 180.0) -> LocalJudgeServer:
        env = {**os.environ, **({"OMP_NUM_THREADS": str(self.threads)} if self.threads else {})}
        with open(self.log_path or os.devnull, "ab") as log:
            # The child keeps its own copy of the log's descriptor; ours can close now.
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                where = f"; see {self.log_path}" if self.log_path else ""
                raise EnvironmentProblem(
                    f"`{' '.join(self.command())}` exited with code {self.process.returncode}{where}. "
                    "If `transformers serve` is missing its dependencies: pip install 'affect-rl[serving]'"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise EnvironmentProblem(f"The local judge on port {self.port} did not answer /health within {timeout:.0f} s.")

    def kill(self) -> None:
        """SIGKILL: the server dies mid-request, as a crashed judge node would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> LocalJudgeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
