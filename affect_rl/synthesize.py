"""Synthesize stage: the model writes reasoning for labelled rows, the rewards verify it, and what
passes becomes SFT data (Facial-R1's third stage, RobitsG/Facial-R1 ``src/eval/infer_emotion.py``).

    affect-rl synthesize --config recipes/facial_r1/synthesize.yaml [--key value ...]

Each training row's prompt gains its gold answer as a hint (``affect_rl/data/templates/
synthesis_hint.jinja``: the label, and for faces the gold Action Units). Each completion is scored
with the recipe's ``rewards:`` against the row, and accepted when every reward reaches its bar in
``accept`` (default: each reward's maximum, so the AUs cited equal the gold set and the answer is
the label, as Facial-R1 verifies). A rejected row is retried up to ``retries`` times with its
previous attempt and the reasons in the prompt; rows still rejected are tried again in the next
of ``rounds`` rounds. Accepted completions are paired with the row's plain prompt (no hint) and
written as ``synthesized.jsonl``: the rows with their ``completion``, deduplicated, plus the
held-out rows, ready for an SFT stage (``dataset_from: synthesize/synthesized``). ``summary.json``
and ``acceptance.png`` report the acceptance rate per round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from affect_rl.data_stage import StageRewards, completion_scores, load_stage_rows, write_selection
from affect_rl.errors import ConfigError, DataError
from affect_rl.generation import Sampling, generate_completions


@dataclass
class SynthesizeArguments:
    """The synthesize stage's own settings (model, data and rewards come from the usual recipe keys)."""

    output_dir: str = field(default="runs/synthesize", metadata={"help": "Where the dataset and summary go."})
    rounds: int = field(default=1, metadata={"help": "Passes over the rows not accepted yet."})
    retries: int = field(default=5, metadata={"help": "Retries of a rejected row within a round (Facial-R1: 5)."})
    temperature: float = field(default=0.0, metadata={"help": "0: greedy, as Facial-R1's synthesis; > 0 samples."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling when temperature > 0."})
    max_new_tokens: int = field(default=256, metadata={"help": "Completion length cap (Facial-R1's default 256)."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generation batch."})
    accept: dict[str, float] | None = field(
        default=None,
        metadata={"help": "Reward name -> the score a completion must reach; unset: every reward's maximum."},
    )
    seed: int = field(default=42, metadata={"help": "Sampling seed."})

    def __post_init__(self):
        for name in ("rounds", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer; got {getattr(self, name)}")
        if self.retries < 0 or self.temperature < 0:
            raise ConfigError("retries and temperature must not be negative")


def acceptance_bars(cfg, rewards: StageRewards) -> dict[str, float]:
    """Reward name -> the minimum score accepted: ``accept`` where given, else the reward's maximum."""
    from rewards.registry import reward_class

    bars = dict(cfg.training.accept or {})
    unknown = sorted(set(bars) - set(rewards.names))
    if unknown:
        raise ConfigError(f"{cfg.source}: accept names {unknown}, which are not among the rewards: "
                          f"{', '.join(rewards.names)}")  # fmt: skip
    highest = {name: reward_class(entry.name).value_range[1] for name, entry in zip(rewards.names, rewards.entries)}
    return {name: bars.get(name, highest[name]) for name in rewards.names}


def verdicts(scores: dict[str, list], bars: dict[str, float]) -> list[list[str]]:
    """Per completion, the reasons it is rejected (empty: accepted). A reward that does not apply passes.

    >>> verdicts({"format": [1.0, 0.0], "accuracy": [1.0, None]}, {"format": 1.0, "accuracy": 1.0})
    [[], ['format scored 0 (needs 1)']]
    """
    count = len(next(iter(scores.values())))
    reasons: list[list[str]] = [[] for _ in range(count)]
    for name, values in scores.items():
        for row, value in enumerate(values):
            if value is not None and value < bars[name] - 1e-9:
                reasons[row].append(f"{name} scored {value:.3g} (needs {bars[name]:.3g})")
    return reasons


def hinted_prompt(prompt: list[dict], row: dict, task: str, previous: str | None, reasons: list[str]) -> list[dict]:
    """The row's prompt with the gold-answer hint (and the rejected attempt) added to the user turn."""
    from affect_rl.data.rendering import _render, answer_text

    hint = _render("synthesis_hint.jinja", {"row": row, "task": task, "answer": answer_text(row, task),
                                            "previous": previous, "reasons": "; ".join(reasons)})  # fmt: skip
    *head, user = prompt
    return [*head, {"role": user["role"], "content": f"{user['content']}\n\n{hint}"}]


def run(cfg) -> dict:
    """Run the synthesize stage of ``cfg`` (a StageConfig whose ``training`` is SynthesizeArguments)."""
    from affect_rl.data.heldout import row_fingerprint

    args: SynthesizeArguments = cfg.training
    rewards = StageRewards.of(cfg)
    bars = acceptance_bars(cfg, rewards)
    rows = load_stage_rows(cfg)
    accepted: dict[int, str] = {}
    rounds = []
    pending = list(range(len(rows.train)))
    for round_number in range(1, args.rounds + 1):
        tried, attempts, last = list(pending), 0, {}
        current = list(pending)
        for attempt in range(args.retries + 1):
            if not current:
                break
            prompts = [hinted_prompt(rows.prompts[i], rows.train[i], cfg.data.task, *last.get(i, (None, [])))
                       for i in current]  # fmt: skip
            sampling = Sampling(temperature=args.temperature, top_p=args.top_p, seed=args.seed + 1000 * round_number + attempt)
            completions = generate_completions(cfg.model.model_name_or_path, prompts, batch_size=args.batch_size,
                                               max_new_tokens=args.max_new_tokens, sampling=sampling,
                                               images=rows.images and [rows.images[i] for i in current])  # fmt: skip
            scores, _ = completion_scores(rewards, [rows.prompts[i] for i in current], list(completions),
                                          [rows.train[i] for i in current], "synthesis attempts")  # fmt: skip
            attempts += len(current)
            for index, completion, reasons in zip(current, completions, verdicts(scores, bars)):
                if reasons:
                    last[index] = (completion, reasons)
                else:
                    accepted[index] = completion
            current = [i for i in current if i not in accepted]
        newly = [i for i in tried if i in accepted]
        rounds.append({"round": round_number, "rows": len(tried), "accepted": len(newly), "attempts": attempts,
                       "acceptance_rate": len(newly) / len(tried) if tried else 0.0})  # fmt: skip
        print(f"synthesize round {round_number}: accepted {len(newly)} of {len(tried)} rows "
              f"({rounds[-1]['acceptance_rate']:.0%}) in {attempts} attempts")
        pending = [i for i in pending if i not in accepted]
        if not pending:
            break
    kept, seen = [], set()
    for index in sorted(accepted):
        key = row_fingerprint({k: v for k, v in rows.train[index].items() if k != "completion"})
        if key not in seen:
            seen.add(key)
            kept.append(rows.train[index] | {"completion": accepted[index].strip()})
    output_dir = Path(args.output_dir)
    dataset = write_selection(output_dir / "synthesized.jsonl", kept, rows.heldout)
    summary = {"rows": len(rows.train), "accepted": len(accepted), "kept_after_dedup": len(kept),
               "acceptance_rate": len(accepted) / len(rows.train), "accept": bars, "rounds": rounds,
               "datasets": {"synthesized": str(dataset)}}  # fmt: skip
    (output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    summary["plot"] = str(plot_acceptance(rounds, output_dir / "acceptance.png"))
    if not kept:  # the SFT stage after it would find no rows to train on
        raise DataError(f"synthesize accepted none of {len(rows.train)} rows (see {output_dir / 'summary.json'}): "
                        "lower the `accept` bars, raise `retries` or `rounds`, or start from a model that writes "
                        "the template.")
    print(f"synthesize: kept {len(kept)} of {len(rows.train)} rows ({summary['acceptance_rate']:.0%}); {dataset}")
    return summary


def plot_acceptance(rounds: list[dict], out_png: Path) -> Path:
    """Acceptance rate per round, with the rows tried as bar labels."""
    from affect_rl.report import _pyplot, _save

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 3.2))
    positions = [entry["round"] for entry in rounds]
    bars = axis.bar(positions, [entry["acceptance_rate"] for entry in rounds], color="#4878d0")
    for bar, entry in zip(bars, rounds):
        axis.annotate(f"{entry['accepted']}/{entry['rows']}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                      ha="center", va="bottom", fontsize=8)  # fmt: skip
    axis.set_xticks(positions)
    axis.set_ylim(0, 1.1)
    axis.set_xlabel("round")
    axis.set_ylabel("acceptance rate")
    figure.tight_layout()
    return _save(figure, out_png)
