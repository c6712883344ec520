"""affect-rl: R1-style SFT + GRPO fine-tuning for emotion and empathy reasoning models."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__version__ = "0.1.0"

_CHECKOUT = Path(__file__).resolve().parent.parent


def recipe_path(name: str) -> Path:
    """A file or folder shipped under the recipes, e.g. ``recipe_path("demo/pipeline.yaml")``.

    In a checkout (``pyproject.toml`` beside the package) it is under the top-level ``recipes/``;
    in an installed wheel, the same files are the package data ``affect_rl/recipes`` (setup.py
    maps the one onto the other), found through importlib.resources.

    >>> recipe_path("demo/pipeline.yaml").parts[-3:]
    ('recipes', 'demo', 'pipeline.yaml')
    """
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "recipes").is_dir():
        return _CHECKOUT / "recipes" / name
    return Path(resources.files("affect_rl.recipes").joinpath(name))
