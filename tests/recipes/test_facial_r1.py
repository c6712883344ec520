"""recipes/facial_r1: SFT on FEA-20K reasoning -> GRPO (R_AU + R_acc + R_format, Facial-R1's) -> eval, on images."""

from pathlib import Path

from recipe_runs import (
    REPO,
    assert_all_done,
    plan_gpu_pipeline,
    read_jsonl,
    run_recipe,
    tiny_recipe,
)

IMAGES = REPO / "recipes" / "facial_r1" / "cpu_data" / "images"


def test_facial_r1_gpu_recipe_validates():
    plans = plan_gpu_pipeline("facial_r1")
    sft, grpo = plans["sft"].stage_config, plans["grpo"].stage_config
    assert (sft.data.format, sft.data.task, sft.data.template) == ("fea20k", "facial", "r1")
    assert grpo.training.reward_weights == [1.0, 1.0, 1.0]  # R = R_AU + R_acc + R_format
    assert plans["grpo"].config["model"]["model_name_or_path"] == "/nonexistent-run/sft"


def test_facial_r1_cpu_pipeline_runs_on_the_tiny_vlm(tmp_path, in_repo, tiny_vlm_dir, eval_images):
    shrink = {"sft": {"max_steps": 1}, "grpo": {"max_steps": 1, "max_completion_length": 8},
              "eval": {"max_new_tokens": 8}}  # fmt: skip
    recipe = tiny_recipe(tmp_path, "facial_r1", tiny_vlm_dir, shrink, {"base": tiny_vlm_dir, "grpo": "grpo"})
    run = tmp_path / "run"
    manifest, report = run_recipe(recipe, run)

    assert_all_done(manifest, ["sft", "grpo", "eval"])
    for stage in ("sft", "grpo"):  # train.jsonl's 9 rows less the is_valid: false one; test.jsonl held out
        rows = manifest["stages"][stage]["rows"]
        assert (rows["train_rows"], rows["heldout_rows"]) == (8, 4)
    heldout = read_jsonl(run / "sft" / "heldout.jsonl")
    assert all(row["completion"].startswith("<think>") and row["aus"] for row in heldout)  # FEA-20K's targets
    assert all(Path(row["image"]).parent == IMAGES for row in heldout)  # resolved against cpu_data/
    metrics = manifest["stages"]["grpo"]["metrics"]
    assert -1.0 <= metrics["rewards/au_f1/mean"] <= 1.0
    assert 0.0 <= metrics["rewards/accuracy/mean"] <= 1.0 and 0.0 <= metrics["rewards/format/mean"] <= 1.0

    # every eval generation (base, grpo) got each test face's image
    assert len(eval_images) == 2
    assert all(sorted(Path(image).name for (image,) in images) == sorted(Path(r["image"]).name for r in heldout)
               for images in eval_images)  # fmt: skip
    assert report["task"] == "facial" and report["n_rows"] == 4
    for checkpoint in ("base", "grpo"):
        summary = report["summary"][checkpoint]
        for metric in ("accuracy", "au_f1_micro", "au_f1_macro", "format"):
            assert 0.0 <= summary[metric] <= 1.0, (checkpoint, metric, summary[metric])
    assert set(report["breakdown"]) == {"faces-prototype", "faces-variant"}  # per FEA-20K source dataset
    records = read_jsonl(run / "eval" / "completions_grpo.jsonl")
    assert [record["gold_aus"] != [] for record in records] == [True] * 4
