"""Reward functions for affective reasoning, each usable directly by TRL's GRPOTrainer.

``available()`` lists the registered names; ``build(name, **options)`` returns a reward: a
picklable callable ``reward(prompts, completions, **dataset_columns) -> list[float | None]``
whose options were checked from its signature (``rewards.base``). A recipe's ``rewards:`` list
goes through ``rewards.entries`` (typed entries, stage-derived options, routing, range checks).
"""

from rewards.registry import RewardSpec, available, build, check_options, register, spec

__all__ = ["RewardSpec", "available", "build", "check_options", "register", "spec"]
