"""The pipeline end to end on a tiny model: SFT -> GRPO -> eval, manifest, report, resume."""

import json

import pytest
import yaml

from affect_rl.errors import ConfigError
from affect_rl.pipeline import run_eval_stage, run_pipeline_file

ROWS = [
    {"text": "My sister flew home after two years abroad.", "emotions": ["happy", "excited"], "split": "train"},
    {"text": "The landlord kept our deposit without a reason.", "emotions": ["angry"], "split": "train"},
    {"text": "I forgot my best friend's birthday.", "emotions": ["guilty"], "split": "train"},
    {"text": "The scan results came back clear.", "emotions": ["calm"], "split": "train"},
    {"text": "Nobody came to my art show opening.", "emotions": ["sad", "lonely"], "split": "test"},
    {"text": "A stranger returned my lost wallet.", "emotions": ["grateful"], "split": "test"},
    {"text": "My flight was cancelled for the third time.", "emotions": ["frustrated"], "split": "test"},
]
COMMON = {"dataset": None, "task": "emotion", "template": "r1", "report_to": "none", "bf16": False,
          "num_sample_prompts": 0, "logging_steps": 1, "save_strategy": "no", "seed": 0}


def write_recipes(folder, model_dir):
    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    common = dict(COMMON, dataset=str(data), model_name_or_path=model_dir)
    sft = dict(common, max_steps=2, per_device_train_batch_size=2, learning_rate=1e-3)
    grpo = dict(common, max_steps=1, per_device_train_batch_size=4, num_generations=2, max_completion_length=8,
                rewards=[{"name": "emotion_wheel", "weight": 1.0}, {"name": "format", "weight": 0.2}])
    pipeline = {
        "name": "tiny",
        "stages": [
            {"name": "sft", "stage": "sft", "config": "sft.yaml"},
            {"name": "grpo", "stage": "grpo", "config": "grpo.yaml", "model_from": "sft"},
            {"name": "eval", "stage": "eval", "models": {"base": model_dir, "sft": "sft", "grpo": "grpo"},
             "max_new_tokens": 8, "batch_size": 4, "n_bootstrap": 50},
        ],
    }
    for name, content in (("sft.yaml", sft), ("grpo.yaml", grpo), ("pipeline.yaml", pipeline)):
        (folder / name).write_text(yaml.safe_dump(content, sort_keys=False))
    return folder / "pipeline.yaml"


def test_pipeline_runs_every_stage_writes_manifest_and_report_then_skips_on_rerun(tiny_model_dir, tmp_path):
    recipe = write_recipes(tmp_path, tiny_model_dir)
    run_dir = tmp_path / "run"
    manifest = run_pipeline_file(str(recipe), output_dir=str(run_dir))

    assert [record["status"] for record in manifest["stages"].values()] == ["done", "done", "done"]
    on_disk = json.loads((run_dir / "manifest.json").read_text())
    assert on_disk["stages"]["grpo"]["config"]["model"]["model_name_or_path"] == str(run_dir / "sft")
    assert on_disk["stages"]["sft"]["config"]["training"]["max_steps"] == 2
    assert on_disk["packages"]["trl"] and "train_loss" in on_disk["stages"]["sft"]["metrics"]

    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert list(report["checkpoints"]) == ["base", "sft", "grpo"]
    # Without a dataset the eval scores exactly the rows the training stages held out: the 3 test rows.
    assert on_disk["stages"]["sft"]["rows"] == {"heldout": str(run_dir / "sft" / "heldout.jsonl"),
                                                "heldout_rows": 3, "train_rows": 4}
    assert report["n_rows"] == 3 and report["task"] == "emotion"
    leak = {"name": "leak", "stage": "eval", "models": {"grpo": "grpo"}, "dataset": str(tmp_path / "rows.jsonl"),
            "task": "emotion", "split": "train", "n_bootstrap": 10}
    with pytest.raises(ConfigError, match=r"would score 4 row\(s\) that stage 'grpo' trained on"):
        run_eval_stage(leak, tmp_path / "leak", on_disk)
    assert (run_dir / "eval" / "report.md").is_file()
    assert list((run_dir / "eval").glob("*.png"))

    again = run_pipeline_file(str(recipe), output_dir=str(run_dir))
    assert again["stages"]["sft"]["wall_time_s"] == manifest["stages"]["sft"]["wall_time_s"]


@pytest.mark.parametrize("stages, message", [
    ([{"name": "a", "stage": "dpo", "config": "x.yaml"}], "one of sft, grpo, eval"),
    ([{"name": "a", "stage": "sft"}], "needs `config:`"),
    ([{"name": "g", "stage": "grpo", "config": "x.yaml", "model_from": "sft"}], "must name an earlier stage"),
    ([{"name": "e", "stage": "eval", "models": {}, "max_new_token": 3}], "unknown: \\['max_new_token'\\]"),
    ([], "non-empty list"),
])
def test_bad_pipelines_fail_before_anything_runs(tmp_path, stages, message):
    recipe = tmp_path / "pipeline.yaml"
    recipe.write_text(yaml.safe_dump({"stages": stages}))
    with pytest.raises(ConfigError, match=message):
        run_pipeline_file(str(recipe), output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run" / "manifest.json").exists()
