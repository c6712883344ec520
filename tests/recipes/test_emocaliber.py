"""recipes/emocaliber: SFT (structured reasoning) -> SFT (verbalised confidence) -> GRPO (calibration reward,
EmoCaliber's) -> eval with ECE / Brier / AUROC, on images."""

import math
from pathlib import Path

from recipe_runs import (
    REPO,
    assert_all_done,
    plan_gpu_pipeline,
    read_jsonl,
    run_recipe,
    tiny_recipe,
)

STAGES = ["sft", "sft_confidence", "grpo", "eval"]
IMAGES = REPO / "recipes" / "emocaliber" / "cpu_data" / "images"


def test_emocaliber_gpu_recipe_validates():
    plans = plan_gpu_pipeline("emocaliber")
    assert list(plans) == STAGES
    assert plans["sft_confidence"].config["model"]["model_name_or_path"] == "/nonexistent-run/sft"
    assert plans["grpo"].config["model"]["model_name_or_path"] == "/nonexistent-run/sft_confidence"
    assert plans["eval"].config["format"] == "emocaliber" and plans["eval"].config["template"] == "emocaliber"


def test_emocaliber_cpu_pipeline_runs_on_the_tiny_vlm(tmp_path, in_repo, tiny_vlm_dir, eval_images):
    shrink = {"sft": {"max_steps": 1}, "sft_confidence": {"max_steps": 1},
              "grpo": {"max_steps": 1, "max_completion_length": 8}, "eval": {"max_new_tokens": 8}}  # fmt: skip
    recipe = tiny_recipe(tmp_path, "emocaliber", tiny_vlm_dir, shrink, {"base": tiny_vlm_dir, "grpo": "grpo"})
    run = tmp_path / "run"
    manifest, report = run_recipe(recipe, run)

    assert_all_done(manifest, STAGES)
    for stage in ("sft", "sft_confidence", "grpo"):  # 8 rows per file, a quarter held out
        rows = manifest["stages"][stage]["rows"]
        assert (rows["train_rows"], rows["heldout_rows"]) == (6, 2)
    assert manifest["stages"]["sft_confidence"]["model_from"] == "sft"
    stage1 = read_jsonl(run / "sft" / "heldout.jsonl")
    stage2 = read_jsonl(run / "sft_confidence" / "heldout.jsonl")
    assert all("<element>" in row["completion"] and "<confidence>" not in row["completion"] for row in stage1)
    assert all(row["completion"].endswith("</confidence>") for row in stage2)
    assert all(Path(row["image"]).parent == IMAGES for row in stage1 + stage2)
    # -5 for an invalid completion (a tiny model writes no template), up to 1 + 1 + 2 ln(1) = 2 when right
    assert -5.0 <= manifest["stages"]["grpo"]["metrics"]["rewards/calibration/mean"] <= 2.0

    # every eval generation (base, grpo) got each VECBench-style test row's image
    assert len(eval_images) == 2 and all(len(images) == 4 for images in eval_images)
    assert all(Path(image).parent == IMAGES and "test_" in Path(image).name
               for images in eval_images for (image,) in images)  # fmt: skip
    assert report["task"] == "label" and report["template"] == "emocaliber" and report["n_rows"] == 4
    assert sorted(report["classes"]) == ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
    for checkpoint in ("base", "grpo"):
        summary = report["summary"][checkpoint]
        assert 0.0 <= summary["accuracy"] <= 1.0 and 0.0 <= summary["format"] <= 1.0
        for metric in ("ece", "brier"):  # NaN (null) when no completion states a confidence
            value = summary[metric]
            assert value is None or math.isnan(value) or 0.0 <= value <= 1.0
    records = read_jsonl(run / "eval" / "completions_grpo.jsonl")
    assert {record["dataset"] for record in records} == {"Faces-6"} and all("confidence" in r for r in records)
