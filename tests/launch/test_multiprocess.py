"""Real two-process training on CPU with the launch configs: accelerate + DDP over gloo, and
DeepSpeed ZeRO-2 and ZeRO-3, each running affect-rl's SFT and GRPO stages on a tiny Llama.

Each run goes through ``accelerate launch ... tests/launch/rank_probe.py``, which calls the
stage API and writes one record per rank. The tests prove that the two processes trained ONE
model together: torch.distributed and accelerate both saw 2 processes with the expected
strategy (a world of 2 where accelerate sees 1 process trains two unsynchronised copies), the
weights changed, they are bit-identical on both ranks, ZeRO-3 really sharded them, and the saved
checkpoint holds exactly those weights.

The first DeepSpeed run JIT-compiles DeepSpeed's small CPU communication op (C++, no CUDA; about
a minute, cached in ~/.cache/torch_extensions afterwards).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests" / "launch" / "rank_probe.py"
# The accelerate beside this Python: `make test` runs the venv's Python without activating it.
ACCELERATE = str(Path(sys.executable).with_name("accelerate"))

DDP = ["--config_file", "launch/accelerate/ddp.yaml", "--mixed_precision", "no"]
ZERO2 = ["--config_file", "launch/accelerate/zero2.yaml", "--mixed_precision", "no"]
ZERO3 = ["--config_file", "launch/accelerate/zero3.yaml", "--mixed_precision", "no"]
ZERO2_JSON = ["--use_deepspeed", "--deepspeed_config_file", "launch/deepspeed/zero2.json"]
ZERO3_JSON = ["--use_deepspeed", "--deepspeed_config_file", "launch/deepspeed/zero3.json"]
# DeepSpeed on CPU: affect-rl's CPU default use_cpu=true would make transformers set accelerate up
# as plain multi-CPU DDP (silently, without DeepSpeed), and with no backend named accelerate counts
# one process; so DeepSpeed runs name the gloo backend and keep fp32.
DEEPSPEED_ON_CPU = ["--use_cpu", "false", "--ddp_backend", "gloo", "--bf16", "false"]
# ZeRO-3: affect-rl prints sample generations on rank 0 only after training, which needs every
# rank under ZeRO-3 (the sharded weights are gathered collectively), so the probe skips them.
NO_SAMPLES = ["--num_sample_prompts", "0"]

# A randomly initialised model fills every completion to max_completion_length, so the demo
# rewards tie and GRPO would not update; rank_probe.py registers probe_chars, which varies.
PROBE_REWARDS = "[{name: format, weight: 0.2, template: r1}, {name: probe_chars, weight: 1.0}]"
STAGE_ARGS = {
    "sft": ["--config", "recipes/demo/sft.yaml", "--max_steps", "2", "--per_device_train_batch_size", "2",
            "--learning_rate", "1e-2", "--save_strategy", "no", "--logging_steps", "1"],
    "grpo": ["--config", "recipes/demo/grpo.yaml", "--max_steps", "2", "--per_device_train_batch_size", "2",
             "--num_generations", "2", "--max_completion_length", "8", "--learning_rate", "1e-2",
             "--save_strategy", "no", "--logging_steps", "1", "--rewards", PROBE_REWARDS],
}

# Each DeepSpeed stage runs once through an accelerate YAML and once through a DeepSpeed JSON.
# id: (accelerate launch arguments, stage, extra stage arguments, accelerate's distributed type, ZeRO stage)
CASES = {
    "ddp-sft": (DDP, "sft", [], "MULTI_CPU", None),
    "ddp-grpo": (DDP, "grpo", [], "MULTI_CPU", None),
    "zero2-sft": (ZERO2, "sft", DEEPSPEED_ON_CPU, "DEEPSPEED", 2),
    "zero2json-grpo": (ZERO2_JSON, "grpo", DEEPSPEED_ON_CPU, "DEEPSPEED", 2),
    "zero3-sft": (ZERO3, "sft", DEEPSPEED_ON_CPU + NO_SAMPLES, "DEEPSPEED", 3),
    "zero3json-grpo": (ZERO3_JSON, "grpo", DEEPSPEED_ON_CPU + NO_SAMPLES, "DEEPSPEED", 3),
}


def load_probe():
    spec = importlib.util.spec_from_file_location("rank_probe", PROBE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parameter_record_of(model_dir: str) -> dict:
    from transformers import AutoModelForCausalLM

    return load_probe().parameter_record(AutoModelForCausalLM.from_pretrained(model_dir))


@pytest.fixture(scope="module")
def initial_sha256(tiny_model_dir) -> str:
    return parameter_record_of(tiny_model_dir)["sha256"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_two_ranks(launch_args: list[str], stage: str, stage_args: list[str], work: Path) -> list[dict]:
    """Run ``accelerate launch --num_processes 2`` on the probe; return the ranks' records."""
    results = work / "ranks"
    command = [ACCELERATE, "launch", *launch_args, "--num_processes", "2", "--num_machines", "1",
               "--main_process_port", str(free_port()), str(PROBE), str(results), stage, *stage_args]
    # One thread per rank: the two processes share the machine's cores.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = (completed.stdout + completed.stderr)[-6000:]
    assert completed.returncode == 0, log
    records = sorted((json.loads(p.read_text()) for p in results.glob("rank*.json")), key=lambda r: r["rank"])
    assert [r["rank"] for r in records] == [0, 1], log
    return records


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_train_one_model(case, tiny_model_dir, initial_sha256, tmp_path):
    launch_args, stage, extra_args, distributed_type, zero_stage = CASES[case]
    if distributed_type == "DEEPSPEED" and importlib.util.find_spec("deepspeed") is None:
        pytest.fail("DeepSpeed is not installed: DS_BUILD_OPS=0 pip install 'affect-rl[deepspeed]'")
    output_dir = tmp_path / "model"
    stage_args = [*STAGE_ARGS[stage], "--model_name_or_path", tiny_model_dir, "--output_dir", str(output_dir),
                  *extra_args]
    ranks = launch_two_ranks(launch_args, stage, stage_args, tmp_path)

    for record in ranks:
        assert (record["world_size"], record["num_processes"], record["backend"]) == (2, 2, "gloo")
        assert (record["distributed_type"], record["zero_stage"]) == (distributed_type, zero_stage)
        assert record["global_step"] == 2
    assert ranks[0]["sha256"] == ranks[1]["sha256"]  # one model, not two drifting copies
    assert ranks[0]["sha256"] != initial_sha256  # and it trained
    sharded = zero_stage == 3
    assert all((r["local_numel"] < r["numel"]) == sharded for r in ranks)
    if sharded:
        assert sum(r["local_numel"] for r in ranks) >= ranks[0]["numel"]
    assert parameter_record_of(str(output_dir))["sha256"] == ranks[0]["sha256"]  # the checkpoint is complete
