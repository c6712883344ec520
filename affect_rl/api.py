"""The Python API: every stage from a dict, a YAML path or dataclasses, with your own data and rewards.

    from affect_rl import sft, grpo, evaluate, pipeline

    sft.run("recipes/demo/sft.yaml", output_dir="runs/mine/sft", max_steps=5)
    grpo.run({"task": "emotion", "rewards": [{"name": "format"}]}, model_name_or_path="runs/mine/sft",
             train_dataset=rows, reward_funcs=[my_reward], output_dir="runs/mine/grpo")
    evaluate.run({"dataset": "demo:emotion"}, models={"sft": "runs/mine/sft", "grpo": "runs/mine/grpo"})
    pipeline.run("recipes/demo/pipeline.yaml", output_dir="runs/mine")

A config is a dict of recipe keys (the same keys as a recipe YAML), the path of a recipe YAML, or
a ready :class:`affect_rl.config.StageConfig` (its dataclasses: TRL's ModelConfig and
SFTConfig/GRPOConfig, DataArguments, RecipeArguments); keyword arguments override recipe keys.
Data may come as a ``datasets.Dataset`` (or list) of rows in the task's columns, and rewards as
TRL reward callables, beside or instead of the recipe's. Everything is checked as on the command
line: a bad key or row raises the same one-line error (an ``affect_rl.errors.AffectRLError``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from affect_rl.config import StageConfig, build_stage_config
from affect_rl.config_values import read_yaml_mapping
from affect_rl.data.arguments import PROVIDED_ROWS
from affect_rl.errors import ConfigError


def recipe_values(config, keys: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The recipe keys of ``config`` (a dict or a YAML path) with ``keys`` on top, and their source."""
    if config is None:
        values, source = {}, "Python call"
    elif isinstance(config, (str, Path)):
        values, source = read_yaml_mapping(str(config)), str(config)
    elif isinstance(config, dict):
        values, source = dict(config), "Python call"
    else:
        raise ConfigError(f"config must be a dict of recipe keys, a recipe YAML path or a StageConfig; got "
                          f"{type(config).__name__}")  # fmt: skip
    values.update(keys)
    return values, source


def stage_config(stage: str, config=None, extra_rewards: int = 0, rows_given: bool = False, **keys) -> StageConfig:
    """A StageConfig for ``stage`` from ``config`` and ``keys`` (a StageConfig is used as given);
    with ``rows_given`` and no dataset named, the dataset is the rows passed in (``python:rows``)."""
    if isinstance(config, StageConfig):
        if keys:
            raise ConfigError(f"give keys either in the StageConfig or as keyword arguments, not both: {sorted(keys)}")
        return config
    values, source = recipe_values(config, keys)
    if rows_given and "dataset" not in values and "dataset_mixture" not in values:
        values["dataset"] = PROVIDED_ROWS
    return build_stage_config(stage, values, source, extra_rewards=extra_rewards)
