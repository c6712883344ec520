"""What the data stages (select, synthesize) share: their rows, scoring with the recipe's rewards,
and writing a dataset that later stages train on.

A data stage reads the training rows of its recipe's data (the held-out rows stay held out),
renders their prompts, scores completions with the recipe's ``rewards:`` exactly as GRPO would
(``affect_rl.scoring``: the same keyword arguments, None for rows a reward does not apply to),
and writes datasets as JSONL of canonical rows with a ``split`` column: the selected training
rows as ``train`` and the held-out rows as ``test``, so a stage that trains on the output also
evaluates on the rows the source held out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from affect_rl.jsonl import write_jsonl


@dataclass
class StageRows:
    """The training rows, their rendered prompts and images, and the held-out rows."""

    train: list[dict]
    prompts: list[list[dict]]
    heldout: list[dict]
    images: list[list] | None = None  # per training row, for a vision-language model


def load_stage_rows(cfg) -> StageRows:
    """The recipe's training and held-out rows (main process first), with the training prompts."""
    from accelerate import PartialState

    from affect_rl.data import load_splits, render_prompt
    from affect_rl.data.media import check_model_rows, first_media, row_images
    from affect_rl.models import is_vision_language

    with PartialState().main_process_first():
        splits = load_splits(cfg.data)
    # Only rows with media need the model's kind (generation loads it without remote code).
    vision = first_media(splits["train"]) is not None and is_vision_language(cfg.model.model_name_or_path)
    check_model_rows(splits["train"], cfg.model.model_name_or_path, vision)
    train = list(splits["train"])
    prompts = [render_prompt(row, cfg.data.task, cfg.data.template, cfg.data.system_prompt, cfg.data.label_set)
               for row in train]  # fmt: skip
    return StageRows(train, prompts, list(splits["test"]), [row_images(row) for row in train] if vision else None)


@dataclass
class StageRewards:
    """The recipe's rewards as built for the stage (``affect_rl.config.validate_rewards``)."""

    entries: list
    functions: list
    weights: list[float]

    @classmethod
    def of(cls, cfg) -> "StageRewards":
        from affect_rl.config import validate_rewards
        from affect_rl.scoring import build_reward_functions

        entries = validate_rewards(cfg)
        return cls(entries, *build_reward_functions(entries))

    @property
    def names(self) -> list[str]:
        """The names the scores are keyed by (a reward named twice: ``NAME_2``)."""
        return [function.__name__ for function in self.functions]


def completion_scores(rewards: StageRewards, prompts, completions, rows, label: str) -> tuple[dict[str, list], list]:
    """Each reward's score of each completion (None where it does not apply) and the weighted totals."""
    from affect_rl.scoring import score_rows, weighted_totals

    scored = [row | {"prompt": prompt, "completion": completion}
              for row, prompt, completion in zip(rows, prompts, completions)]  # fmt: skip
    scores, _ = score_rows(rewards.functions, scored, list(range(1, len(scored) + 1)), label)
    return scores, weighted_totals(scores, rewards.weights)


def write_selection(path: Path, train_rows: list[dict], heldout_rows: list[dict]) -> Path:
    """A dataset of canonical rows: ``train_rows`` as the train split, ``heldout_rows`` as test."""
    records = [row | {"split": "train"} for row in train_rows] + [row | {"split": "test"} for row in heldout_rows]
    return write_jsonl(records, path)


# The datasets each data stage writes (``<stage folder>/<name>.jsonl``), for ``dataset_from``.
DATASET_OUTPUTS = {"select": ("keep", "drop", "hard", "easy"), "synthesize": ("synthesized",)}
