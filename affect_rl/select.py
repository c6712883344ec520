"""Select stage: sample k completions per training row, score them, keep the rows worth training on.

    affect-rl select --config recipes/demo_select/select.yaml [--key value ...]

For each training row the stage samples ``num_samples`` completions from the model (HF generate
on CPU, vLLM on a GPU), scores them with the recipe's ``rewards:`` exactly as GRPO would, and
computes the row's pass rate: the share of samples whose ``pass_reward`` score (or the weighted
total of all rewards, when unset) exceeds ``pass_threshold``, or the mean score when the
threshold is null. It writes named datasets, each the selected training rows plus the held-out
rows (so a later stage trains on the selection and evaluates on the same held-out rows):

- ``keep`` / ``drop``: rows whose pass rate lies strictly inside ``keep_band`` / outside it.
  HumanOmniV2 keeps for RL the items whose pass rate over 8 rollouts is in (0, 0.75)
  (HumanMLLM/HumanOmniV2 ``eval/roll_out_all_training.py``): groups that always or never pass
  give GRPO no signal (``frac_reward_zero_std``).
- ``hard`` / ``easy``: rows whose pass rate is below ``hard_below`` / at or above it. Psyche-R1
  sends hard items to GRPO and easy ones to SFT.

It also writes ``pass_rates.png`` (a histogram with the band), ``summary.json`` and
``samples.jsonl`` (every completion with its scores). A pipeline stage uses these datasets with
``dataset_from: select/keep``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from affect_rl.data_stage import StageRewards, StageRows, completion_scores, load_stage_rows, write_selection
from affect_rl.errors import ConfigError
from affect_rl.generation import Sampling, generate_completions



@dataclass
class SelectArguments:
    """The select stage's own settings (model, data and rewards come from the usual recipe keys)."""

    output_dir: str = field(default="runs/select", metadata={"help": "Where the datasets, plot and summary go."})
    num_samples: int = field(default=8, metadata={"help": "Completions sampled per row (HumanOmniV2: 8)."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature (GRPO's, so pass rates match)."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling."})
    max_new_tokens: int = field(default=256, metadata={"help": "Completion length cap, as GRPO's max_completion_length."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generation batch."})
    pass_reward: str | None = field(
        default=None, metadata={"help": "The reward whose score decides a pass; unset: the weighted total."}
    )
    pass_threshold: float | None = field(
        default=0.5,
        metadata={"help": "A sample passes when its score exceeds this (HumanOmniV2: reward > 0.2); null: the pass "
                          "rate is the mean score."},
    )  # fmt: skip
    keep_band: list[float] = field(
        default_factory=lambda: [0.0, 0.75],
        metadata={"help": "keep the rows whose pass rate lies strictly inside [low, high] (HumanOmniV2: 0 < rate < 0.75)."},
    )  # fmt: skip
    hard_below: float = field(default=0.5, metadata={"help": "Rows with a pass rate below this are `hard`."})
    seed: int = field(default=42, metadata={"help": "Sampling seed."})

    def __post_init__(self):
        if self.num_samples < 1 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise ConfigError("num_samples, batch_size and max_new_tokens must be positive integers")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"temperature must be > 0 to sample several different completions; got {self.temperature}")
        if len(self.keep_band) != 2 or not 0.0 <= self.keep_band[0] < self.keep_band[1] <= 1.0:
            raise ConfigError(f"keep_band is [low, high] with 0 <= low < high <= 1; got {self.keep_band}")


def pass_rates(scores: list[float | None], num_samples: int, threshold: float | None) -> list[float]:
    """Per row, the share of its samples that pass (or their mean score when ``threshold`` is None).

    Scores are prompt-major, ``num_samples`` per row; a sample a reward does not apply to (None) fails.

    >>> pass_rates([1.0, 0.0, 1.0, 1.0, None, 0.2], 3, 0.5)
    [0.6666666666666666, 0.3333333333333333]
    """
    rates = []
    for start in range(0, len(scores), num_samples):
        chunk = scores[start : start + num_samples]
        if threshold is None:
            rates.append(sum(s or 0.0 for s in chunk) / len(chunk))
        else:
            rates.append(sum(1 for s in chunk if s is not None and s > threshold) / len(chunk))
    return rates


def partition(rates: list[float], args: SelectArguments) -> dict[str, list[int]]:
    """Row indices of each output dataset.

    >>> partition([0.0, 0.5, 1.0], SelectArguments())
    {'keep': [1], 'drop': [0, 2], 'hard': [0], 'easy': [1, 2]}
    """
    low, high = args.keep_band
    inside = [i for i, rate in enumerate(rates) if low < rate < high]
    return {
        "keep": inside,
        "drop": [i for i in range(len(rates)) if i not in set(inside)],
        "hard": [i for i, rate in enumerate(rates) if rate < args.hard_below],
        "easy": [i for i, rate in enumerate(rates) if rate >= args.hard_below],
    }


def run(cfg) -> dict:
    """Run the select stage of ``cfg`` (a StageConfig whose ``training`` is SelectArguments)."""
    args: SelectArguments = cfg.training
    rewards = StageRewards.of(cfg)
    rows: StageRows = load_stage_rows(cfg)
    sampling = Sampling(n=args.num_samples, temperature=args.temperature, top_p=args.top_p, seed=args.seed)
    completions = generate_completions(cfg.model.model_name_or_path, rows.prompts, batch_size=args.batch_size,
                                       max_new_tokens=args.max_new_tokens, sampling=sampling,
                                       images=rows.images)  # fmt: skip
    repeated = [row for row in rows.train for _ in range(args.num_samples)]
    prompts = [prompt for prompt in rows.prompts for _ in range(args.num_samples)]
    scores, totals = completion_scores(rewards, prompts, list(completions), repeated, "select samples")
    decisive = totals if args.pass_reward is None else _named(scores, args.pass_reward, cfg.source)
    rates = pass_rates(decisive, args.num_samples, args.pass_threshold)
    selected = partition(rates, args)
    output_dir = Path(args.output_dir)
    datasets = {name: write_selection(output_dir / f"{name}.jsonl", [rows.train[i] | {"pass_rate": rates[i]}
                                                                     for i in indices], rows.heldout)
                for name, indices in selected.items()}  # fmt: skip
    _write_samples(output_dir / "samples.jsonl", rows.train, completions, scores, totals, args.num_samples)
    summary = {
        "rows": len(rates), "num_samples": args.num_samples, "pass_reward": args.pass_reward or "weighted total",
        "pass_threshold": args.pass_threshold, "keep_band": args.keep_band, "hard_below": args.hard_below,
        "mean_pass_rate": sum(rates) / len(rates), "counts": {name: len(ix) for name, ix in selected.items()},
        "all_pass": sum(rate == 1.0 for rate in rates), "none_pass": sum(rate == 0.0 for rate in rates),
        "datasets": {name: str(path) for name, path in datasets.items()},
    }  # fmt: skip
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    summary["plot"] = str(plot_pass_rates(rates, args, output_dir / "pass_rates.png"))
    print(f"select: {len(rates)} rows, mean pass rate {summary['mean_pass_rate']:.2f}; "
          + ", ".join(f"{name} {count}" for name, count in summary["counts"].items())
          + f"; {summary['all_pass']} rows always pass, {summary['none_pass']} never. Datasets in {output_dir}")
    return summary


def _named(scores: dict[str, list], name: str, source: str) -> list:
    if name not in scores:
        raise ConfigError(f"{source}: pass_reward {name!r} is not one of the recipe's rewards: {', '.join(scores)}")
    return scores[name]


def _write_samples(path: Path, rows, completions, scores, totals, n: int) -> None:
    from affect_rl.jsonl import write_jsonl

    def records():
        for index, row in enumerate(rows):
            span = range(index * n, index * n + n)
            yield {"id": row.get("id"), "completions": [completions[i] for i in span], "total": [totals[i] for i in span],
                   **{name: [values[i] for i in span] for name, values in scores.items()}}  # fmt: skip

    write_jsonl(records(), path)


def plot_pass_rates(rates: list[float], args: SelectArguments, out_png: Path) -> Path:
    """A histogram of the rows' pass rates, with the keep band shaded."""
    from affect_rl.report import _pyplot, _save

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 3.4))
    edges = [i / args.num_samples for i in range(args.num_samples + 2)]
    axis.hist(rates, bins=[e - 0.5 / args.num_samples for e in edges], color="#4878d0", edgecolor="white")
    axis.axvspan(*args.keep_band, color="#6acc64", alpha=0.15, label=f"keep {args.keep_band[0]} < rate < {args.keep_band[1]}")
    axis.axvline(args.hard_below, color="#d65f5f", linestyle="--", label=f"hard below {args.hard_below}")
    axis.set_xlabel(f"pass rate over {args.num_samples} samples")
    axis.set_ylabel("rows")
    axis.set_title(f"{len(rates)} rows, mean pass rate {sum(rates) / len(rates):.2f}")
    axis.legend(fontsize=8)
    figure.tight_layout()
    return _save(figure, out_png)
