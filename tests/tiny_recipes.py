"""Recipes for the tiny test models, one home for what the CPU speed-up tests share.

``tiny_recipe`` is an SFT or GRPO recipe on the emotion task with the r1 template: one step, fp32,
no tracking and no sample printing; each test adds the keys it checks. ``tiny_grpo_trainer``
builds the GRPO trainer of such a recipe without training.
"""

from __future__ import annotations

from affect_rl import grpo
from affect_rl.config import build_stage_config


def tiny_recipe(model_dir, data_file, output_dir, **keys) -> dict:
    """A one-step emotion / r1 recipe for ``model_dir`` on ``data_file``; ``keys`` override or add."""
    return {"model_name_or_path": str(model_dir), "dataset": str(data_file), "task": "emotion", "template": "r1",
            "output_dir": str(output_dir), "max_steps": 1, "per_device_train_batch_size": 4, "report_to": "none",
            "num_sample_prompts": 0, "bf16": False, **keys}  # fmt: skip


# The tests that feed the same completions to two trainers and compare losses and gradients: ragged
# completions of up to 8 tokens scored by length, 4 per prompt, from the policy itself.
FIXED_COMPLETIONS = {"rewards": [{"name": "length", "weight": 1.0, "max_length": 8, "buffer": 4}],
                     "per_device_train_batch_size": 8, "num_generations": 4, "max_completion_length": 8,
                     "fast_rollouts": False}


# The tests that train a few real GRPO steps on 20% held-out rows: 12-token completions scored by format
# and length, 8 completions a step, a step logged each time, nothing saved.
A_FEW_STEPS = {"test_size": 0.2, "rewards": [{"name": "format", "weight": 1.0},
                                             {"name": "length", "weight": 1.0, "max_length": 12, "buffer": 6}],
               "per_device_train_batch_size": 8, "max_completion_length": 12, "logging_steps": 1,
               "save_strategy": "no", "seed": 0}


def tiny_grpo_trainer(model_dir, data_file, output_dir, **keys):
    """The GRPO trainer of ``tiny_recipe(...)``, with two 4-token completions per prompt and the format
    reward unless ``keys`` say otherwise."""
    recipe = tiny_recipe(model_dir, data_file, output_dir, **{
        "rewards": [{"name": "format", "weight": 1.0}], "num_generations": 2, "max_completion_length": 4, **keys})
    trainer, _ = grpo.build_trainer(build_stage_config("grpo", recipe, "test"))
    return trainer
