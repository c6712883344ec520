import json

import matplotlib.image
import pytest

from affect_rl.report import (
    format_interval,
    load_log_history,
    markdown_report,
    plot_reward_curves,
    write_report,
)


def interval(value, low, high):
    return {"value": value, "ci_low": low, "ci_high": high}


REPORT = {
    "task": "emotion",
    "template": "r1",
    "data": "demo:emotion",
    "n_rows": 60,
    "n_bootstrap": 1000,
    "seed": 0,
    "confidence": 0.95,
    "metrics": ["ew_f_level1", "format", "mean_tokens", "truncation_rate"],
    "checkpoints": {
        "base": {"metrics": {"ew_f_level1": interval(0.0, 0.0, 0.0), "format": interval(0.0, 0.0, 0.0),
                             "mean_tokens": interval(48.0, 48.0, 48.0), "truncation_rate": interval(1.0, 1.0, 1.0)}},
        "sft": {"metrics": {"ew_f_level1": interval(0.654, 0.581, 0.72), "format": interval(0.95, 0.9, 1.0),
                            "mean_tokens": interval(31.44, 29.5, 33.2), "truncation_rate": interval(0.05, 0.0, 0.1)}},
        "grpo": {"metrics": {"ew_f_level1": interval(0.7, 0.63, 0.77), "format": interval(1.0, 1.0, 1.0),
                             "mean_tokens": interval(28.0, 26.5, 29.4), "truncation_rate": interval(None, None, None)}},
    },
    "differences": {
        "sft-base": {"minuend": "sft", "subtrahend": "base",
                     "metrics": {"ew_f_level1": interval(0.654, 0.581, 0.72), "format": interval(0.95, 0.9, 1.0),
                                 "mean_tokens": interval(-16.56, -18.5, -14.8), "truncation_rate": interval(-0.95, -1.0, -0.9)}},
        "grpo-sft": {"minuend": "grpo", "subtrahend": "sft",
                     "metrics": {"ew_f_level1": interval(0.046, -0.01, 0.1), "format": interval(0.05, 0.0, 0.1),
                                 "mean_tokens": interval(-3.44, -5.8, -0.8), "truncation_rate": interval(None, None, None)}},
    },
}


def test_interval_cells():
    assert format_interval(interval(0.654, 0.581, 0.7249)) == "0.65 [0.58, 0.72]"
    assert format_interval(interval(0.046, -0.01, 0.1), signed=True) == "+0.05 [-0.01, +0.10]"
    assert format_interval(interval(0.5, None, None)) == "0.50"
    assert format_interval(interval(None, None, None)) == "n/a"


def test_markdown_has_one_row_per_checkpoint_and_difference():
    lines = markdown_report(REPORT).splitlines()
    assert "| checkpoint | EW F (level 1) | format compliance | mean tokens | truncation rate |" in lines
    assert "| sft | 0.65 [0.58, 0.72] | 0.95 [0.90, 1.00] | 31.4 [29.5, 33.2] | 0.05 [0.00, 0.10] |" in lines
    assert "| grpo | 0.70 [0.63, 0.77] | 1.00 [1.00, 1.00] | 28.0 [26.5, 29.4] | n/a |" in lines
    # Differences: * marks intervals that exclude 0.
    assert "| grpo-sft | +0.05 [-0.01, +0.10] | +0.05 [+0.00, +0.10] | -3.4 [-5.8, -0.8] * | n/a |" in lines
    assert sum(line.startswith("| sft-base |") for line in lines) == 1
    # Each table: header, separator, then 3 checkpoint rows or 2 difference rows.
    assert sum(line.startswith("| ") for line in lines) == (2 + 3) + (2 + 2)
    assert "Lower is better for: truncation rate." in markdown_report(REPORT)


def test_write_report_writes_json_markdown_and_plots(tmp_path):
    paths = write_report(REPORT, tmp_path)
    assert json.loads(paths["json"].read_text()) == REPORT
    assert paths["markdown"].read_text() == markdown_report(REPORT)
    # 4 metrics -> one row of 4 panels (3.4 x 2.9 inches each at 110 dpi).
    assert matplotlib.image.imread(paths["metrics_plot"]).shape[:2] == (319, 1496)
    assert paths["differences_plot"].stat().st_size > 5_000


def test_no_differences_plot_for_a_single_checkpoint(tmp_path):
    single = {**REPORT, "checkpoints": {"base": REPORT["checkpoints"]["base"]}, "differences": {}}
    paths = write_report(single, tmp_path)
    assert "differences_plot" not in paths and not (tmp_path / "differences.png").exists()
    assert "Differences" not in paths["markdown"].read_text()


GRPO_HISTORY = [
    {"step": step, "loss": 0.01, "reward": 0.5 + 0.02 * step, "reward_std": 0.2,
     "rewards/emotion_wheel/mean": 0.4 + 0.02 * step, "rewards/emotion_wheel/std": 0.2,
     "rewards/format/mean": 0.9}
    for step in range(1, 9)
] + [{"step": 8, "train_runtime": 12.0}]
SFT_HISTORY = [{"step": step, "loss": 2.0 / step} for step in range(1, 11)]


def test_reward_curves_get_one_panel_per_run_and_quantity(tmp_path):
    sft_dir = tmp_path / "sft" / "checkpoint-10"
    sft_dir.mkdir(parents=True)
    (sft_dir / "trainer_state.json").write_text(json.dumps({"log_history": SFT_HISTORY}))
    out = plot_reward_curves({"sft": tmp_path / "sft" / "trainer_state.json", "grpo": GRPO_HISTORY}, tmp_path / "c.png")
    # grpo rewards, sft loss, grpo loss: three panels of 2.9 inches at 110 dpi.
    assert matplotlib.image.imread(out).shape[:2] == (957, 880)


def test_reward_curves_skip_missing_runs_and_runs_without_rewards_or_loss(tmp_path):
    assert plot_reward_curves([tmp_path / "missing"], tmp_path / "c.png") is None
    assert plot_reward_curves([{"step": 1, "learning_rate": 1e-5}], tmp_path / "c.png") is None
    assert not (tmp_path / "c.png").exists()


def test_log_history_comes_from_the_newest_checkpoint(tmp_path):
    for step in (5, 10, 9):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "trainer_state.json").write_text(json.dumps({"log_history": [{"step": step}]}))
    assert load_log_history(tmp_path) == [{"step": 10}]
    (tmp_path / "trainer_state.json").write_text(json.dumps({"log_history": [{"step": 12}]}))
    assert load_log_history(tmp_path) == [{"step": 12}]
    with pytest.raises(FileNotFoundError):
        load_log_history(tmp_path / "elsewhere" / "trainer_state.json")
