"""Evaluation reports: report.json, report.md and PNG plots.

A report (built by ``affect_rl.evaluate.evaluate_checkpoints``) is a dict:

    {"task", "template", "data", "n_rows", "n_bootstrap", "confidence", "seed",
     "metrics": [metric names, in column order],
     "checkpoints": {label: {"model": path, "completions": file,
                             "metrics": {name: {"value", "ci_low", "ci_high"}}}},
     "differences": {"sft-base": {"minuend": "sft", "subtrahend": "base",
                                  "metrics": {name: {"value", "ci_low", "ci_high"}}}}}

Plots use matplotlib's Agg backend, so they render without a display.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from affect_rl.files import atomic_write_text

METRIC_LABELS = {
    "ew_f_level1": "EW F (level 1)",
    "ew_p_level1": "EW P (level 1)",
    "ew_r_level1": "EW R (level 1)",
    "ew_f_level2": "EW F (level 2)",
    "ew_p_level2": "EW P (level 2)",
    "ew_r_level2": "EW R (level 2)",
    "accuracy": "accuracy",
    "uar": "UAR",
    "war": "WAR",
    "f1_macro": "macro F1",
    "f1_weighted": "weighted F1",
    "exact_match": "exact match",
    "set_f1": "set F1",
    "auroc": "AUROC (confidence)",
    "rouge_l": "ROUGE-L (reasoning)",
    "au_f1_micro": "AU F1 micro",
    "au_f1_macro": "AU F1 macro",
    "au_consistency": "AU-emotion consistency",
    "judge": "judge score",
    "ece": "ECE",
    "brier": "Brier",
    "format": "format compliance",
    "mean_tokens": "mean tokens",
    "truncation_rate": "truncation rate",
}
LOWER_IS_BETTER = {"ece", "brier", "truncation_rate"}
# Metrics not on a 0-1 scale: their own axis range and one decimal.
UNBOUNDED = {"mean_tokens", "judge"}

logger = logging.getLogger(__name__)


def metric_label(name: str) -> str:
    """The display name of a metric (the name itself when it has none)."""
    return METRIC_LABELS.get(name, name)


def format_interval(interval: Mapping, digits: int = 2, signed: bool = False) -> str:
    """``"0.65 [0.58, 0.72]"`` from ``{"value", "ci_low", "ci_high"}``; ``"n/a"`` for a missing value.

    >>> format_interval({"value": 0.05, "ci_low": -0.01, "ci_high": 0.1}, signed=True)
    '+0.05 [-0.01, +0.10]'
    """
    if interval.get("value") is None:
        return "n/a"
    spec = f"{'+' if signed else ''}.{digits}f"
    if interval.get("ci_low") is None:
        return format(interval["value"], spec)
    return f"{interval['value']:{spec}} [{interval['ci_low']:{spec}}, {interval['ci_high']:{spec}}]"


def excludes_zero(interval: Mapping) -> bool:
    """Whether a difference's interval lies entirely above or below 0."""
    low, high = interval.get("ci_low"), interval.get("ci_high")
    return low is not None and high is not None and (low > 0 or high < 0)


def _digits(name: str) -> int:
    return 1 if name in UNBOUNDED else 2


def markdown_report(report: Mapping) -> str:
    """The tables of report.md: metrics per checkpoint, then differences between checkpoints."""
    names = report["metrics"]
    share = round(100 * report["confidence"])
    lines = [
        f"# Evaluation: task {report['task']}, template {report['template']}",
        "",
        f"{report['n_rows']} test rows of `{report['data']}`. Each cell: value [{share}% bootstrap interval], "
        f"{report['n_bootstrap']} resamples of the rows, seed {report['seed']}. "
        f"Lower is better for: {', '.join(metric_label(n) for n in names if n in LOWER_IS_BETTER) or 'none'}.",
        "",
        *_table(["checkpoint", *map(metric_label, names)], _checkpoint_cells(report, names)),
    ]
    if report["differences"]:
        lines += [
            "",
            "## Differences (paired bootstrap on the same rows)",
            "",
            "A minus B, resampling the same rows for both; * marks an interval that excludes 0.",
            "",
            *_table(["A - B", *map(metric_label, names)], _difference_cells(report, names)),
        ]
    for value, part in (report.get("breakdown") or {}).items():
        lines += ["", f"## {value} ({part['n_rows']} rows)", "",
                  *_table(["checkpoint", *map(metric_label, names)], _checkpoint_cells(part, names))]
    return "\n".join(lines) + "\n"


def _checkpoint_cells(report: Mapping, names: Sequence[str]) -> list[list[str]]:
    return [
        [label, *(format_interval(entry["metrics"][name], _digits(name)) for name in names)]
        for label, entry in report["checkpoints"].items()
    ]


def _difference_cells(report: Mapping, names: Sequence[str]) -> list[list[str]]:
    rows = []
    for pair, entry in report["differences"].items():
        cells = []
        for name in names:
            interval = entry["metrics"][name]
            mark = " *" if excludes_zero(interval) else ""
            cells.append(format_interval(interval, _digits(name), signed=True) + mark)
        rows.append([pair, *cells])
    return rows


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def write_report(report: Mapping, output_dir: str | Path) -> dict[str, Path]:
    """Write report.json, report.md, metrics.png and (with several checkpoints) differences.png."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": output_dir / "report.json", "markdown": output_dir / "report.md"}
    atomic_write_text(paths["json"], json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    atomic_write_text(paths["markdown"], markdown_report(report))
    paths["metrics_plot"] = plot_metrics(report, output_dir / "metrics.png")
    if report["differences"]:
        paths["differences_plot"] = plot_differences(report, output_dir / "differences.png")
    return paths


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _errorbar_bounds(entries: Sequence[Mapping]) -> tuple[list[float], list[list[float]]]:
    """Values and matplotlib's [below, above] error lengths; NaN where a value or bound is missing."""
    values, below, above = [], [], []
    for entry in entries:
        value = math.nan if entry.get("value") is None else entry["value"]
        low = value if entry.get("ci_low") is None else entry["ci_low"]
        high = value if entry.get("ci_high") is None else entry["ci_high"]
        values.append(value)
        below.append(max(value - low, 0.0))
        above.append(max(high - value, 0.0))
    return values, [below, above]


def plot_metrics(report: Mapping, out_png: str | Path) -> Path:
    """One panel per metric: each checkpoint's value with its bootstrap interval as error bars."""
    plt = _pyplot()
    names, labels = report["metrics"], list(report["checkpoints"])
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.9 * rows), squeeze=False)
    colours = plt.get_cmap("tab10").colors
    for axis, name in zip(axes.flat, names):
        entries = [report["checkpoints"][label]["metrics"][name] for label in labels]
        values, errors = _errorbar_bounds(entries)
        for position, (value, below, above) in enumerate(zip(values, *errors)):
            colour = colours[position % len(colours)]
            axis.errorbar(position, value, yerr=[[below], [above]], fmt="o", color=colour, capsize=5, markersize=7)
            if math.isnan(value):  # undefined, e.g. ECE when no completion states a confidence
                axis.text(position, 0.5, "n/a", transform=axis.get_xaxis_transform(), ha="center", color="grey")
            else:
                axis.annotate(f"{value:.{_digits(name)}f}", (position, value), textcoords="offset points",
                              xytext=(9, -3), fontsize=8)
        axis.set_xticks(range(len(labels)), labels, fontsize=9)
        axis.set_xlim(-0.6, len(labels) - 0.4)
        if name not in UNBOUNDED:
            axis.set_ylim(-0.04, 1.04)
        title = metric_label(name) + (" (lower is better)" if name in LOWER_IS_BETTER else "")
        axis.set_title(title, fontsize=10)
        axis.grid(axis="y", alpha=0.3)
    for axis in list(axes.flat)[len(names) :]:
        axis.set_visible(False)
    share = round(100 * report["confidence"])
    title = f"{report['task']} / {report['template']}: {report['n_rows']} test rows, {share}% bootstrap intervals"
    figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, out_png)


def plot_differences(report: Mapping, out_png: str | Path) -> Path:
    """Paired differences (A - B) on the 0-1 metrics, with intervals; a dashed line at 0."""
    plt = _pyplot()
    names = [name for name in report["metrics"] if name not in UNBOUNDED]
    pairs = list(report["differences"])
    figure, axis = plt.subplots(figsize=(7.5, 0.42 * len(names) + 0.25 * len(pairs) + 1.3))
    colours = plt.get_cmap("tab10").colors
    offsets = [0.0] if len(pairs) == 1 else [0.4 * (i / (len(pairs) - 1) - 0.5) for i in range(len(pairs))]
    for index, pair in enumerate(pairs):
        entries = [report["differences"][pair]["metrics"][name] for name in names]
        values, errors = _errorbar_bounds(entries)
        positions = [row + offsets[index] for row in range(len(names))]
        axis.errorbar(values, positions, xerr=errors, fmt="o", capsize=4, color=colours[(index + 1) % len(colours)],
                      label=pair)
    axis.axvline(0.0, color="grey", linestyle="--", linewidth=1)
    tick_labels = [metric_label(name) + (" (lower is better)" if name in LOWER_IS_BETTER else "") for name in names]
    axis.set_yticks(range(len(names)), tick_labels)
    axis.set_ylim(len(names) - 0.5, -0.5)
    share = round(100 * report["confidence"])
    axis.set_xlabel(f"difference A - B with its {share}% paired bootstrap interval")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(pairs), fontsize=9, frameon=False)
    figure.tight_layout()
    return _save(figure, out_png)


def _save(figure, out_png: str | Path) -> Path:
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_png, dpi=110)
    _pyplot().close(figure)
    return out_png


# ---- training curves ----


def load_log_history(source) -> list[dict]:
    """TRL/transformers ``log_history``: from a list of dicts, a trainer_state.json file, or a run
    folder holding one (at its top, else in its newest ``checkpoint-*``).

    Raises FileNotFoundError when there is none.
    """
    if isinstance(source, list):
        return source
    path = Path(source)
    folder = path if path.is_dir() else path.parent
    candidates = [path] if path.is_file() else []
    candidates += [folder / "trainer_state.json"] + sorted(
        folder.glob("checkpoint-*/trainer_state.json"), key=lambda p: _checkpoint_step(p.parent), reverse=True
    )
    found = next((candidate for candidate in candidates if candidate.is_file()), None)
    if found is None:
        raise FileNotFoundError(f"no trainer_state.json at {source}")
    return json.loads(found.read_text(encoding="utf-8"))["log_history"]


def _checkpoint_step(folder: Path) -> int:
    suffix = folder.name.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else -1


def plot_reward_curves(sources, out_png: str | Path) -> Path | None:
    """Rewards and loss over training steps, from TRL ``trainer_state.json`` log histories.

    ``sources``: one source or several (a list, or a dict run name -> source), each a
    trainer_state.json path, a run folder or a ``log_history`` list. Each run that logged
    rewards gets a panel with ``reward`` (the weighted total, its std as a band) and every
    ``rewards/<name>/mean``; each run that logged ``loss`` gets a loss panel (SFT and GRPO
    losses differ in scale, so they never share an axis). Runs without logs are skipped with
    a warning; returns None when nothing is left to plot.
    """
    histories = _histories(sources)
    panels = []
    for name, history in histories.items():
        rewards = _series(history, _is_reward_key)
        if rewards:
            reward_std = _series(history, lambda key: key == "reward_std").get("reward_std")
            panels.append((name, "reward", rewards, reward_std))
    for name, history in histories.items():
        loss = _series(history, lambda key: key == "loss")
        if loss:
            panels.append((name, "loss", loss, None))
    if not panels:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(len(panels), 1, figsize=(8, 2.9 * len(panels)), squeeze=False)
    for axis, (name, quantity, series, reward_std) in zip(axes[:, 0], panels):
        for key, (steps, values) in series.items():
            line = axis.plot(steps, values, marker="o", markersize=3, linewidth=1.5, label=_curve_label(key))[0]
            if key == "reward" and reward_std and reward_std[0] == steps:
                low = [m - s for m, s in zip(values, reward_std[1])]
                high = [m + s for m, s in zip(values, reward_std[1])]
                axis.fill_between(steps, low, high, color=line.get_color(), alpha=0.15, linewidth=0,
                                  label="reward ± std")
        axis.set_title(f"{name}: {quantity}" if name else quantity, fontsize=10)
        axis.set_ylabel(quantity)
        axis.grid(alpha=0.3)
        if quantity == "reward":
            axis.legend(fontsize=8, loc="best")
    axes[-1, 0].set_xlabel("training step")
    figure.tight_layout()
    return _save(figure, out_png)


def _is_reward_key(key: str) -> bool:
    """``reward`` (TRL's weighted total) or ``rewards/<function>/mean``."""
    return key == "reward" or (key.startswith("rewards/") and key.endswith("/mean"))


def _histories(sources) -> dict[str, list[dict]]:
    """Run name -> log history, skipping (with a warning) sources that have none."""
    if isinstance(sources, Mapping):
        named = dict(sources)
    elif isinstance(sources, (str, Path)) or (isinstance(sources, list) and sources and isinstance(sources[0], dict)):
        named = {"": sources}
    else:
        named = {_source_name(source, index): source for index, source in enumerate(sources)}
    histories = {}
    for name, source in named.items():
        try:
            histories[name] = load_log_history(source)
        except FileNotFoundError as missing:
            logger.warning("No training curves for %s: %s", name or "the run", missing)
    return histories


def _source_name(source, index: int) -> str:
    if isinstance(source, (str, Path)):
        path = Path(source)
        return (path.parent if path.suffix == ".json" else path).name
    return f"run {index + 1}"


def _series(history: list[dict], wanted) -> dict[str, tuple[list[int], list[float]]]:
    """Key -> (steps, values) for every numeric logged key that ``wanted`` accepts."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for entry in history:
        for key, value in entry.items():
            if wanted(key) and isinstance(value, (int, float)) and "step" in entry:
                steps, values = series.setdefault(key, ([], []))
                steps.append(entry["step"])
                values.append(value)
    return series


def _curve_label(key: str) -> str:
    """``rewards/emotion_wheel/mean`` -> ``emotion_wheel``; ``reward`` -> ``reward (weighted total)``."""
    if key == "reward":
        return "reward (weighted total)"
    return key.removeprefix("rewards/").removesuffix("/mean")
