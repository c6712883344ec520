"""Evaluate checkpoints on the same rows: greedy generation, per-task metrics, bootstrap intervals.

    affect-rl eval --model base=smollm2-135m-instruct --model sft=runs/demo/sft \\
        --dataset demo:emotion --output_dir runs/eval
    affect-rl eval --config eval.yaml --model grpo=runs/x/grpo --split validation

Every eval setting is a field of :class:`EvalArguments`: the data settings of training
(``DataArguments``: dataset, format, column_mapping, task, template, system prompt, label set)
plus the eval's own. The CLI, a YAML file and a pipeline's eval stage all fill it the same way.
The rows scored are ``split`` (default: the test split); a source without splits is scored
whole. A pipeline's eval scores the rows its training stages held out.

Completions come from ``affect_rl.generation`` (greedy; vLLM on a GPU, else batched HF
``generate``), records from ``affect_rl.eval_records``, metrics from ``affect_rl.metrics``
(bootstrapped by ``affect_rl.stats``), and ``affect_rl.report`` writes report.json, report.md
and the plots.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from affect_rl.data.arguments import PROVIDED_ROWS, DataArguments
from affect_rl.errors import ConfigError, DataError
from affect_rl.eval_records import LABEL_TASKS, classes_of, score_rows
from affect_rl.jsonl import write_jsonl
from affect_rl.metrics import (
    au_f1_scores,
    calibration_scores,
    choice_scores,
    class_scores,
    emotion_wheel_scores,
    mean_field,
)
from affect_rl.report import markdown_report, plot_reward_curves, write_report
from affect_rl.stats import Bootstrap, Metric, bootstrap
from rewards.templates import get_template

DTYPES = ("auto", "float32", "bfloat16")  # generation weights; auto: affect_rl.generation.generation_dtype


@dataclass
class EvalArguments(DataArguments):
    """The data settings of training plus the eval's own; one class for the CLI, YAML and pipelines."""

    models: dict[str, str] | None = field(
        default=None,
        metadata={"help": "Label -> checkpoint (path, hub id or alias), in report order; consecutive checkpoints "
                          "are compared. On the command line: --model LABEL=CKPT, repeated."},
    )  # fmt: skip
    split: str | None = field(
        default=None,
        metadata={"help": "The split scored, optionally sliced (validation, test[:200]); default test_split. A "
                          "source without splits is scored whole."},
    )  # fmt: skip
    output_dir: str = field(default="runs/eval", metadata={"help": "Where report.json/.md, plots and completions go."})
    batch_size: int = field(default=16, metadata={"help": "Generation batch size."})
    max_new_tokens: int = field(default=96, metadata={"help": "Generation length cap (tokens)."})
    dtype: str = field(
        default="auto",
        metadata={"help": "Weights' dtype for generation: auto (bf16 where the device runs it natively, else "
                          "fp32), float32 or bfloat16. Use float32 to compare checkpoints a few small steps apart "
                          "(GRPO from SFT): bf16 rounding alone moves their greedy scores."},
    )  # fmt: skip
    n_bootstrap: int = field(default=1000, metadata={"help": "Bootstrap resamples for the intervals."})
    seed: int = field(default=0, metadata={"help": "Bootstrap seed."})
    judge: dict | None = field(
        default=None,
        metadata={"help": "Options of a `rubric` reward (e.g. {rubric: empathy, base_url: http://127.0.0.1:8000/v1}):"
                          " its score is reported as `judge`."},
    )  # fmt: skip
    breakdown_column: str = field(
        default="dataset", metadata={"help": "Column whose values get their own metrics (when it has several)."}
    )

    def __post_init__(self):
        super().__post_init__()
        for name in ("batch_size", "max_new_tokens", "n_bootstrap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}; got {self.dtype!r}")
        if self.models is not None and (not isinstance(self.models, dict) or not self.models):
            raise ConfigError(f"models must map labels to checkpoints, e.g. {{base: smollm2-135m-instruct}}; "
                              f"got {self.models!r}")  # fmt: skip


EVAL_FIELDS = tuple(f.name for f in dataclasses.fields(EvalArguments))


def build_eval_arguments(values: Mapping[str, Any], source: str) -> EvalArguments:
    """EvalArguments from a mapping of keys (YAML, command line or pipeline stage), typed and checked."""
    from affect_rl.config import build_arguments

    return build_arguments(EvalArguments, dict(values), source, "eval")


# ---- metrics per task ----


def task_metrics(task: str, template: str, judged: bool = False, generated: bool = True,
                 referenced: bool = False) -> dict[str, Metric]:  # fmt: skip
    """Name -> metric function over score records, for ``task`` and ``template``.

    Metrics returning several values (EW F, P and R) are keyed by a group name. ``judged`` adds
    the judge mean, ``generated`` the length and truncation metrics (they need token counts),
    ``referenced`` ROUGE-L against the rows' reference reasoning.
    """
    metrics: dict[str, Metric] = {}
    if task == "emotion":
        metrics["ew_level1"] = partial(emotion_wheel_scores, level="level1")
        metrics["ew_level2"] = partial(emotion_wheel_scores, level="level2")
    if task == "choice":
        metrics["choice"] = choice_scores
    else:
        metrics["accuracy"] = partial(mean_field, field="correct")
    if task in LABEL_TASKS:
        metrics["classes"] = class_scores
    if task == "facial":
        metrics["au_f1"] = au_f1_scores
        metrics["au_consistency"] = partial(mean_field, field="au_consistency")
    if judged:
        metrics["judge"] = partial(mean_field, field="judge")
    if get_template(template).confidence is not None:
        metrics["calibration"] = calibration_scores
    if referenced:
        metrics["rouge_l"] = partial(mean_field, field="rouge_l")
    metrics["format"] = partial(mean_field, field="format")
    if generated:
        metrics["mean_tokens"] = partial(mean_field, field="num_tokens")
        metrics["truncation_rate"] = partial(mean_field, field="truncated")
    return metrics


# ---- the report ----


def run(config=None, *, models: dict[str, str] | None = None, rows=None, judge=None, **keys) -> dict:
    """Evaluate from Python: ``config`` (a dict of eval keys, a YAML path, or EvalArguments) with
    ``keys`` on top; ``models`` label -> checkpoint; ``rows`` (a Dataset or list of rows in the
    task's columns) instead of the config's dataset; ``judge`` a reward callable. Returns the report."""
    from affect_rl.api import recipe_values
    from affect_rl.data import check_rows

    if isinstance(config, EvalArguments):
        eval_args = config
    else:
        values, source = recipe_values(config, keys)
        if models is not None:
            values["models"] = models
        if rows is not None and "dataset" not in values and "dataset_mixture" not in values:
            values["dataset"] = PROVIDED_ROWS
        eval_args = build_eval_arguments(values, source)
    if not eval_args.models:
        raise ConfigError("name the checkpoints to evaluate: models={label: checkpoint}")
    if rows is not None:
        rows = check_rows(list(rows), eval_args.task, "the rows argument").rows
    return evaluate_checkpoints(eval_args.models, eval_args, rows=rows, judge=judge)


def evaluate_checkpoints(
    models: Mapping[str, str],
    eval_args: EvalArguments,
    rows: Sequence[dict] | None = None,
    judge: Callable | None = None,
    training_logs=None,
) -> dict:
    """Generate with each checkpoint on the eval rows, score, and write the report.

    Args:
        models: label -> checkpoint, in report order; consecutive checkpoints are compared
            ("sft-base", "grpo-sft").
        eval_args: the data and eval settings (``rows`` come from its dataset and split unless given).
        rows: canonical rows to score instead (a pipeline passes its stages' held-out rows).
        judge: a TRL-style reward ``fn(prompts, completions, **columns)`` (sync or async) whose
            mean is reported as ``judge``; default: built from ``eval_args.judge``.
        training_logs: trainer_state.json paths or run folders whose curves go to training_curves.png.

    Returns:
        The report dict (``affect_rl.report``) with ``files`` and ``summary``.
    """
    from affect_rl.data import load_eval_rows, render_prompt
    from affect_rl.data.media import check_images, row_images
    from affect_rl.generation import generate_completions

    output_dir = Path(eval_args.output_dir)
    task, template = eval_args.task, eval_args.template
    rows = list(rows) if rows is not None else load_eval_rows(eval_args, eval_args.split)
    if not rows:
        raise DataError(f"no rows to evaluate in {eval_args.dataset!r}; point split at some rows")
    judge = judge or (_build_judge(eval_args) if eval_args.judge else None)
    prompts = [render_prompt(row, task, template, eval_args.system_prompt, eval_args.label_set) for row in rows]
    images = [row_images(row) for row in rows] if check_images(rows) else None  # every image opens and fits
    classes = classes_of(rows, task, eval_args.label_set)
    records_by_label = {}
    for label, model in models.items():
        completions = generate_completions(model, prompts, batch_size=eval_args.batch_size,
                                           max_new_tokens=eval_args.max_new_tokens, images=images,
                                           dtype=eval_args.dtype)  # fmt: skip
        judge_scores = _call(judge, prompts, list(completions), rows) if judge else None
        records = score_rows(task, template, completions, rows, classes, judge_scores)
        records_by_label[label] = records
        write_jsonl(({"row": i, "prompt": prompts[i], **record} for i, record in enumerate(records)),
                    output_dir / f"completions_{label}.jsonl")  # fmt: skip
    referenced = any("rouge_l" in record for record in next(iter(records_by_label.values())))
    metrics = task_metrics(task, template, judged=judge is not None, referenced=referenced)
    report = summarise(records_by_label, metrics, n_bootstrap=eval_args.n_bootstrap, seed=eval_args.seed)
    report.update(task=task, template=template, data=eval_args.dataset or "the held-out rows", classes=classes,
                  breakdown=_breakdown(records_by_label, metrics, eval_args))  # fmt: skip
    for label, model in models.items():
        report["checkpoints"][label].update(model=str(model), completions=f"completions_{label}.jsonl")
    files = write_report(report, output_dir)
    if training_logs:
        curves = plot_reward_curves(training_logs, output_dir / "training_curves.png")
        if curves is not None:
            files["training_curves"] = curves
    report["files"] = {kind: str(path) for kind, path in files.items()}
    return report


def _build_judge(eval_args: EvalArguments):
    import rewards

    options = {"template": eval_args.template} | dict(eval_args.judge)
    return rewards.build("rubric", **options)


def _call(judge: Callable, prompts, completions, rows) -> list:
    """The judge's scores; an async judge (the rubric reward) is run to completion."""
    columns = {name: [row.get(name) for row in rows] for name in rows[0]}
    result = judge(prompts=prompts, completions=completions, **columns)
    return asyncio.run(result) if inspect.isawaitable(result) else result


def _breakdown(records_by_label, metrics, eval_args: EvalArguments) -> dict:
    """Per value of the breakdown column (when it has several): the same metrics on its rows."""
    column = eval_args.breakdown_column
    first = next(iter(records_by_label.values()))
    values = list(dict.fromkeys(record.get(column) for record in first if record.get(column) is not None))
    if len(values) < 2:
        return {}
    breakdown = {}
    for value in values:
        subset = {label: [r for r in records if r.get(column) == value] for label, records in records_by_label.items()}
        part = summarise(subset, metrics, n_bootstrap=eval_args.n_bootstrap, seed=eval_args.seed)
        breakdown[str(value)] = {"n_rows": part["n_rows"], "checkpoints": part["checkpoints"]}
    return breakdown


def summarise(
    records_by_label: Mapping[str, list[dict]],
    metrics: Mapping[str, Metric],
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict:
    """Intervals of every metric per checkpoint, and paired intervals of consecutive differences.

    Every checkpoint is bootstrapped with the same seed on the same rows, hence on identical
    resampled indices: the difference of two checkpoints' draws is their paired bootstrap.
    Returns the report fields ``metrics``, ``checkpoints``, ``differences``, ``summary``,
    ``n_rows``, ``n_bootstrap``, ``seed`` and ``confidence``.
    """
    named = [partial(_named_values, metric=metric, name=name) for name, metric in metrics.items()]
    results = {
        label: [bootstrap(records, metric, n_bootstrap, seed) for metric in named]
        for label, records in records_by_label.items()
    }
    checkpoints = {label: {"metrics": _interval_dicts(parts, confidence)} for label, parts in results.items()}
    labels = list(results)
    differences = {
        f"{newer}-{older}": {
            "minuend": newer,
            "subtrahend": older,
            "metrics": _interval_dicts([a.minus(b) for a, b in zip(results[newer], results[older])], confidence),
        }
        for older, newer in zip(labels, labels[1:])
    }
    names = list(next(iter(checkpoints.values()))["metrics"]) if checkpoints else []
    summary = {
        label: {name: entry["metrics"][name]["value"] for name in names}
        for label, entry in {**checkpoints, **differences}.items()
    }
    n_rows = len(next(iter(records_by_label.values()), []))
    return {"metrics": names, "checkpoints": checkpoints, "differences": differences, "summary": summary,
            "n_rows": n_rows, "n_bootstrap": n_bootstrap, "seed": seed, "confidence": confidence}  # fmt: skip


def _named_values(records: Sequence[dict], metric: Metric, name: str) -> dict[str, float]:
    """A metric's values as a dict: a scalar metric's value is named after the metric."""
    result = metric(records)
    return dict(result) if isinstance(result, Mapping) else {name: result}


def _interval_dicts(parts: Sequence[Bootstrap], confidence: float) -> dict[str, dict]:
    """Metric value name -> ``{"value", "ci_low", "ci_high"}``."""
    flat = {}
    for part in parts:
        flat.update({name: interval.to_dict() for name, interval in part.intervals(confidence).items()})
    return flat


# ---- the command line ----


def checkpoint_labels(values: Sequence[str]) -> dict[str, str]:
    """Label -> checkpoint from ``--model`` values: ``LABEL=CHECKPOINT``, or a bare checkpoint
    labelled by its folder name.

    >>> checkpoint_labels(["base=smollm2-135m-instruct", "runs/lr=5e-5/sft"])
    {'base': 'smollm2-135m-instruct', 'sft': 'runs/lr=5e-5/sft'}
    """
    models = {}
    for value in values:
        label, equals, checkpoint = value.partition("=")
        if not equals or "/" in label:  # a bare checkpoint, possibly with "=" in its path
            label, checkpoint = Path(value.rstrip("/")).name, value
        if label in models:
            raise ConfigError(f"Two --model values share the label {label!r}; name them: --model LABEL=CHECKPOINT.")
        models[label] = checkpoint
    return models


def evaluate_from_cli(config: str | None, model_values: Sequence[str], overrides: Sequence[str]) -> dict:
    """``affect-rl eval``: EvalArguments from ``--config`` and ``--key value`` overrides, each ``--model``
    added; evaluate, then print the table and the paths written."""
    from affect_rl.config_values import parse_overrides, read_yaml_mapping

    values = read_yaml_mapping(config) if config else {}
    values.update(parse_overrides(list(overrides)))
    if "data" in values:  # the short spelling of --dataset
        values["dataset"] = values.pop("data")
    if model_values:
        values["models"] = {**(values.get("models") or {}), **checkpoint_labels(model_values)}
    eval_args = build_eval_arguments(values, config or "command line")
    if not eval_args.models:
        raise ConfigError("name the checkpoints to evaluate: --model LABEL=CKPT (repeat to compare)")
    report = evaluate_checkpoints(eval_args.models, eval_args)
    print_report(report)
    return report


def print_report(report: dict) -> None:
    """The comparison table, then where the report and plots are."""
    print(markdown_report(report))
    for kind, path in report["files"].items():
        print(f"{kind}: {path}")
