"""What this machine can do: GPU presence, native bf16 support on the CPU, and whether a run hands
its model to DeepSpeed or FSDP.

These decide the CPU-aware defaults in :mod:`affect_rl.config`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

# CPU flags that mean bf16 matmuls run natively (AVX-512 BF16 on Cooper Lake / Zen 4 and later,
# AMX on Sapphire Rapids). Without them bf16 autocast is emulated and slower than fp32.
_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return frozenset()
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_supports_bf16() -> bool:
    """True when the CPU runs bf16 natively, so bf16 autocast beats fp32 (about 2x measured here)."""
    return bool(cpu_flags() & _BF16_CPU_FLAGS)


def cuda_available() -> bool:
    """True when torch sees a CUDA GPU."""
    import torch

    return torch.cuda.is_available()


def sharded_training(training_args) -> str | None:
    """"DeepSpeed" or "FSDP" when the run hands its model to either (from the training arguments or
    an ``accelerate launch`` config), else None. Their engines own the weights (ZeRO-3 and FSDP
    shard them), so affect-rl's CPU speed-ups leave such runs to TRL's own paths."""
    if training_args.deepspeed or launched_with("DEEPSPEED"):
        return "DeepSpeed"
    if training_args.fsdp or launched_with("FSDP"):
        return "FSDP"
    return None


def launched_with(engine: str) -> bool:
    """True when ``accelerate launch`` was configured for ``engine`` (DEEPSPEED, FSDP): it says so
    to its processes through ``ACCELERATE_USE_<engine>``."""
    return os.environ.get(f"ACCELERATE_USE_{engine}", "").lower() == "true"


def cpu_speedups_apply(training_args) -> bool:
    """True where affect-rl's CPU speed-ups for GRPO may replace TRL's code: no CUDA GPU, and a
    model that neither DeepSpeed nor FSDP wraps."""
    return not cuda_available() and sharded_training(training_args) is None


def cuda_supports_bf16() -> bool:
    """True on Ampere or newer NVIDIA GPUs."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
