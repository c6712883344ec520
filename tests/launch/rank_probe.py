"""Run one affect-rl stage under ``accelerate launch`` and record what each rank saw.

Used by ``test_multiprocess.py``::

    accelerate launch --config_file launch/accelerate/ddp.yaml --num_processes 2 \\
        tests/launch/rank_probe.py RESULT_DIR sft --config recipes/demo/sft.yaml [--key value ...]

Each rank writes ``RESULT_DIR/rank{N}.json``: the world size torch.distributed reports, how
accelerate set the run up (process count, distributed type, backend, ZeRO stage), how many
parameter elements the rank holds itself (less than the total under ZeRO-3) and a SHA-256 of
all parameters after training (gathered first under ZeRO-3), so the test can prove that two
processes really trained one model together; also the rank's peak resident memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import resource
import sys
from pathlib import Path


def gathered(parameters):
    """A context in which ZeRO-3-partitioned parameters hold their full values on every rank."""
    if any(hasattr(p, "ds_id") for p in parameters):
        import deepspeed

        return deepspeed.zero.GatheredParameters(parameters)
    return contextlib.nullcontext()


def parameter_record(model) -> dict:
    """SHA-256 and sum of all parameters (sorted by name) plus the elements stored on this rank."""
    import torch

    parameters = [p for _, p in sorted(model.named_parameters())]
    local_numel = sum(p.ds_tensor.numel() if hasattr(p, "ds_tensor") else p.numel() for p in parameters)
    with gathered(parameters):
        flat = torch.cat([p.detach().float().flatten().cpu() for p in parameters])
        return {
            "sha256": hashlib.sha256(flat.numpy().tobytes()).hexdigest(),
            "sum": float(flat.double().sum()),
            "numel": flat.numel(),
            "local_numel": local_numel,
        }


def register_probe_reward() -> None:
    """Register ``probe_chars``: the completion's length in characters / 100.

    A randomly initialised model fills every completion up to max_completion_length, so the
    demo rewards tie within each group, advantages are zero and GRPO would not move the
    weights. Character counts of random tokens differ, so this reward makes the update real.
    """
    from rewards.base import Reward
    from rewards.registry import register
    from rewards.text import completion_text

    @register
    class ProbeChars(Reward):
        name, summary, value_range, source = "probe_chars", "completion length in characters / 100", (0.0, 1e9), "tests"

        def __init__(self):
            pass

        def __call__(self, prompts, completions, **columns):
            return [len(completion_text(completion)) / 100 for completion in completions]


def main(argv: list[str]) -> None:
    import torch.distributed as dist

    from affect_rl import grpo, sft
    from affect_rl.config import load_stage_config

    result_dir, stage, *rest = argv
    if rest[:1] != ["--config"]:
        raise SystemExit("usage: rank_probe.py RESULT_DIR STAGE --config FILE [--key value ...]")
    register_probe_reward()
    cfg = load_stage_config(stage, rest[1], rest[2:])
    trainer = {"sft": sft, "grpo": grpo}[stage].train(cfg)

    engine = trainer.model_wrapped
    record = {
        "rank": dist.get_rank() if dist.is_initialized() else 0,
        "world_size": dist.get_world_size() if dist.is_initialized() else 1,
        "backend": dist.get_backend() if dist.is_initialized() else None,
        "num_processes": trainer.accelerator.num_processes,
        "distributed_type": trainer.accelerator.distributed_type.value,
        "zero_stage": engine.zero_optimization_stage() if hasattr(engine, "zero_optimization_stage") else None,
        "global_step": trainer.state.global_step,
        "epoch": trainer.state.epoch,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
        **parameter_record(trainer.model),
    }
    Path(result_dir).mkdir(parents=True, exist_ok=True)
    (Path(result_dir) / f"rank{record['rank']}.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
