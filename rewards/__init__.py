"""Reward functions for affective reasoning, each usable directly by TRL's GRPOTrainer.

``available()`` lists the registered names; ``build(name, **options)`` returns a TRL reward
function ``fn(prompts, completions, **dataset_columns) -> list[float | None]``.
"""

from rewards.registry import RewardSpec, available, build, check_options, register, spec

__all__ = ["RewardSpec", "available", "build", "check_options", "register", "spec"]
