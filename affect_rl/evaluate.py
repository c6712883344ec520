"""Evaluate checkpoints on a test split: greedy generation, per-task metrics, bootstrap intervals.

    affect-rl eval --model base=smollm2-135m-instruct --model sft=runs/demo/sft \\
        --data demo:emotion --task emotion --output_dir runs/eval

Completions come from ``affect_rl.generation`` (greedy; vLLM on a GPU, else batched HF
``generate``). Each completion is scored row by row (``score_rows``); the metrics of a task (``task_metrics``) are functions of
those rows, so ``affect_rl.stats`` can bootstrap every one of them, and ``evaluate_checkpoints``
writes report.json, report.md and plots through ``affect_rl.report``.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Callable, Mapping, Sequence

from affect_rl.errors import ConfigError, DataError
from affect_rl.generation import generate_completions
from affect_rl.jsonl import write_jsonl
from affect_rl.report import markdown_report, plot_reward_curves, write_report
from affect_rl.stats import Bootstrap, Metric, bootstrap
from rewards.accuracy import labels_match
from rewards.action_units import cited_aus, consistency_score, gold_aus
from rewards.emotion_wheel import ew_metric
from rewards.templates import get_template, parse_confidence
from rewards.wheel import split_labels


# ---- scoring: one record per test row, JSON-ready ----


def score_rows(
    task: str,
    template: str,
    completions: Sequence[str],
    gold_rows: Sequence[dict],
    judge_scores: Sequence[float | None] | None = None,
) -> list[dict]:
    """Score each completion against its gold row; the records feed the metrics and the JSONL.

    Every record holds ``completion``, ``answer`` (the template's answer span, None when it is
    missing), ``format`` (1.0 if the completion fully matches the template, as the format
    reward, else 0.0), ``num_tokens`` and ``truncated`` (None when ``completions`` is a plain
    list), then per task:

    - emotion: ``gold_emotions`` and ``correct``: 1.0 when the first word of the answer list
      matches any gold word under ``rewards.accuracy.labels_match`` (inflections and
      emotion-wheel synonyms: "scared" matches "fear"), else 0.0;
    - facial: ``gold_emotion``, ``correct`` (the answer label matches it), ``gold_aus``,
      ``cited_aus`` (AUs cited by code or FACS name in the reasoning span) and
      ``au_consistency`` (EMFACS support of the answer by the cited AUs; None off-table);
    - empathy: ``gold_emotion`` and ``correct``; ``judge`` when ``judge_scores`` are given;
    - template ``calibrated``: ``confidence``, the verbalised 0 < c < 1 or None.
    """
    spec = get_template(template)
    num_tokens = getattr(completions, "num_tokens", [None] * len(completions))
    truncated = getattr(completions, "truncated", [None] * len(completions))
    records = []
    for row, (text, gold) in enumerate(zip(completions, gold_rows)):
        answer = spec.extract(text, spec.answer)
        record = {
            "completion": text,
            "answer": answer,
            "format": float(spec.matches(text)),
            "num_tokens": num_tokens[row],
            "truncated": truncated[row],
        }
        if task == "emotion":
            top_word = next(iter(split_labels(answer)), None)
            gold_words = split_labels(gold["emotions"])
            record["gold_emotions"] = gold_words
            record["correct"] = float(top_word is not None and any(labels_match(top_word, w) for w in gold_words))
        else:
            record["gold_emotion"] = gold["emotion"]
            record["correct"] = float(answer is not None and labels_match(answer, gold["emotion"]))
        if task == "facial":
            cited = cited_aus(spec.extract(text, spec.reasoning) or "")
            record["gold_aus"] = sorted(gold_aus(gold["aus"], "aus", row))
            record["cited_aus"] = sorted(cited)
            record["au_consistency"] = None if answer is None else consistency_score(cited, answer)
        if judge_scores is not None:
            record["judge"] = judge_scores[row]
        if spec.confidence is not None:
            record["confidence"] = parse_confidence(spec.extract(text, spec.confidence))
        records.append(record)
    return records


# ---- metrics: functions of a list of records, so they can be bootstrapped ----


def task_metrics(task: str, template: str, judged: bool = False, generated: bool = True) -> dict[str, Metric]:
    """Name -> metric function over score records, for ``task`` and ``template``.

    Metrics returning several values (EW F, P and R) are keyed by a group name; their values
    are named ``ew_f_level1`` etc. ``judged`` adds the judge mean, ``generated`` the length and
    truncation metrics (which need token counts from generation).
    """
    metrics: dict[str, Metric] = {}
    if task == "emotion":
        metrics["ew_level1"] = partial(emotion_wheel_scores, level="level1")
        metrics["ew_level2"] = partial(emotion_wheel_scores, level="level2")
    metrics["accuracy"] = partial(mean_field, field="correct")
    if task == "facial":
        metrics["au_f1"] = au_f1_scores
        metrics["au_consistency"] = partial(mean_field, field="au_consistency")
    if judged:
        metrics["judge"] = partial(mean_field, field="judge")
    if get_template(template).confidence is not None:
        metrics["calibration"] = calibration_scores
    metrics["format"] = partial(mean_field, field="format")
    if generated:
        metrics["mean_tokens"] = partial(mean_field, field="num_tokens")
        metrics["truncation_rate"] = partial(mean_field, field="truncated")
    return metrics


def mean_field(records: Sequence[dict], field: str) -> float:
    """Mean of ``record[field]`` over the records where it is not None; NaN if there are none."""
    values = [float(record[field]) for record in records if record.get(field) is not None]
    return sum(values) / len(values) if values else math.nan


def emotion_wheel_scores(records: Sequence[dict], level: str) -> dict[str, float]:
    """The official dataset-level EW metric (``rewards.emotion_wheel.ew_metric``) of the answers:
    F from the wheel-averaged mean precision and recall, rows without a known gold word skipped."""
    fscore, precision, recall = ew_metric(
        [record["gold_emotions"] for record in records], [record["answer"] for record in records], level
    )
    return {f"ew_f_{level}": fscore, f"ew_p_{level}": precision, f"ew_r_{level}": recall}


def au_f1_scores(records: Sequence[dict]) -> dict[str, float]:
    """AU F1 of cited vs gold AU sets.

    micro = 2 TP / (2 TP + FP + FN) with counts summed over rows and AUs;
    macro = mean over the AUs present in some gold set of the rows of 2 TP_k / (2 TP_k + FP_k + FN_k)
    (the usual BP4D / DISFA protocol over the dataset's label set; cited AUs outside it count
    only in micro). NaN where undefined (no AU cited or gold at all).
    """
    counts: dict[int, list[int]] = {}  # AU -> [TP, FP, FN]
    for record in records:
        gold, cited = set(record["gold_aus"]), set(record["cited_aus"])
        for au in gold | cited:
            tally = counts.setdefault(au, [0, 0, 0])
            tally[0 if au in gold and au in cited else 1 if au in cited else 2] += 1
    true_pos, false_pos, false_neg = (sum(tally[i] for tally in counts.values()) for i in range(3))
    micro = 2 * true_pos / (2 * true_pos + false_pos + false_neg) if counts else math.nan
    gold_classes = {au for record in records for au in record["gold_aus"]}
    per_class = [2 * counts[au][0] / (2 * counts[au][0] + counts[au][1] + counts[au][2]) for au in gold_classes]
    macro = sum(per_class) / len(per_class) if per_class else math.nan
    return {"au_f1_micro": micro, "au_f1_macro": macro}


def calibration_scores(records: Sequence[dict], n_bins: int = 10) -> dict[str, float]:
    """ECE and Brier score of the verbalised confidences, over rows that state one.

    ECE = sum over 10 equal-width confidence bins b of (n_b / N) * |accuracy_b - mean confidence_b|
    (a confidence c falls in bin min(floor(10 c), 9)); Brier = mean (c - correct)^2. Both lower
    is better, in [0, 1]; NaN when no row states a confidence (format compliance shows why).
    """
    pairs = [(record["confidence"], record["correct"]) for record in records if record.get("confidence") is not None]
    if not pairs:
        return {"ece": math.nan, "brier": math.nan}
    bins: dict[int, list[tuple[float, float]]] = {}
    for confidence, correct in pairs:
        bins.setdefault(min(int(confidence * n_bins), n_bins - 1), []).append((confidence, correct))
    ece = sum(
        abs(sum(c for c, _ in members) - sum(k for _, k in members)) / len(pairs) for members in bins.values()
    )
    brier = sum((confidence - correct) ** 2 for confidence, correct in pairs) / len(pairs)
    return {"ece": ece, "brier": brier}


# ---- the report: every checkpoint on the same rows, intervals, paired differences ----


def evaluate_checkpoints(
    models: Mapping[str, str],
    data_args,
    output_dir: str | Path,
    batch_size: int = 16,
    max_new_tokens: int = 256,
    seed: int = 0,
    n_bootstrap: int = 1000,
    judge: Callable | None = None,
    training_logs=None,
) -> dict:
    """Generate with each checkpoint on the test split, score, and write the report.

    Args:
        models: label -> checkpoint (a path, a hub id or the ``smollm2-135m-instruct`` alias), in
            report order; consecutive checkpoints are compared ("sft-base", "grpo-sft").
        data_args: an ``affect_rl.data.DataArguments`` (dataset, task, template, test split,
            max_test_samples, system_prompt).
        output_dir: where report.json, report.md, completions_<label>.jsonl and the PNGs go.
        batch_size, max_new_tokens: generation settings (greedy).
        seed, n_bootstrap: the bootstrap; every metric and checkpoint share the resampled rows.
        judge: an optional TRL-style reward ``fn(prompts, completions, **columns)`` (the empathy
            rubric judge) whose mean is reported as ``judge``.
        training_logs: optional trainer_state.json paths or run folders (a list, or a dict
            stage -> path) whose reward and loss curves are plotted to training_curves.png.

    Returns:
        The report dict (see ``affect_rl.report``) with ``files`` (paths written) and ``summary``
        (label or pair -> metric -> value).
    """
    from affect_rl.data import load_splits, render_prompt

    output_dir = Path(output_dir)
    task, template = data_args.task, data_args.template
    test_rows = list(load_splits(data_args)["test"])
    if not test_rows:
        raise DataError(
            f"The test split of {data_args.dataset!r} is empty; point test_split or test_size at some rows."
        )
    prompts = [render_prompt(row, task, template, data_args.system_prompt) for row in test_rows]
    records_by_label = {}
    for label, model in models.items():
        completions = generate_completions(model, prompts, batch_size=batch_size, max_new_tokens=max_new_tokens)
        judge_scores = judge(prompts=prompts, completions=list(completions), **_columns(test_rows)) if judge else None
        records = score_rows(task, template, completions, test_rows, judge_scores)
        records_by_label[label] = records
        write_jsonl(
            ({"row": i, "prompt": prompts[i], **record} for i, record in enumerate(records)),
            output_dir / f"completions_{label}.jsonl",
        )
    metrics = task_metrics(task, template, judged=judge is not None)
    report = summarise(records_by_label, metrics, n_bootstrap=n_bootstrap, seed=seed)
    report.update(task=task, template=template, data=data_args.dataset)
    for label, model in models.items():
        report["checkpoints"][label].update(model=str(model), completions=f"completions_{label}.jsonl")
    files = write_report(report, output_dir)
    if training_logs:
        curves = plot_reward_curves(training_logs, output_dir / "training_curves.png")
        if curves is not None:
            files["training_curves"] = curves
    report["files"] = {kind: str(path) for kind, path in files.items()}
    return report


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
            "n_rows": n_rows, "n_bootstrap": n_bootstrap, "seed": seed, "confidence": confidence}


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


def _columns(rows: Sequence[dict]) -> dict[str, list]:
    """Row dicts -> TRL-style dataset columns (name -> list of values) for a judge reward."""
    return {name: [row.get(name) for row in rows] for name in rows[0]}


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


def evaluate_from_cli(args) -> dict:
    """``affect-rl eval``: evaluate each ``--model`` (see ``checkpoint_labels``) and print the
    metrics table and the paths written."""
    from affect_rl.data import DataArguments

    models = checkpoint_labels(args.model)
    data_args = DataArguments(dataset=args.data, task=args.task, template=args.template,
                              max_test_samples=args.max_test_samples)
    report = evaluate_checkpoints(models, data_args, args.output_dir, batch_size=args.batch_size,
                                  max_new_tokens=args.max_new_tokens, seed=args.seed, n_bootstrap=args.n_bootstrap)
    print_report(report)
    return report


def print_report(report: dict) -> None:
    """The comparison table, then where the report and plots are."""
    print(markdown_report(report))
    for kind, path in report["files"].items():
        print(f"{kind}: {path}")
