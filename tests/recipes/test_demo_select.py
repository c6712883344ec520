"""recipes/demo_select: SFT -> select (pass rates over 4 samples) -> GRPO on the `keep` rows -> eval (issue 13)."""

from recipe_runs import (
    assert_all_done,
    plan_gpu_pipeline,
    read_jsonl,
    run_recipe,
    stage_prompts,
    tiny_recipe,
)

from affect_rl.data.sources import read_demo


def test_demo_select_validates_with_the_demo_s_own_stages():
    plans = plan_gpu_pipeline("demo_select")
    select, grpo = plans["select"].stage_config, plans["grpo"].stage_config
    assert plans["sft"].config["training"]["learning_rate"] == 1e-4  # recipes/demo/sft.yaml, unchanged
    assert (select.training.num_samples, select.training.temperature, select.training.max_new_tokens) == (
        grpo.training.num_generations, grpo.training.temperature, grpo.training.max_completion_length)
    assert select.recipe.rewards == grpo.recipe.rewards  # a pass is what GRPO rewards
    assert select.training.keep_band == [0.0, 1.0] and select.data.train_split == "train[192:288]"
    assert plans["sft"].stage_config.data.max_train_samples == 192  # so select samples rows SFT did not see
    assert grpo.data.dataset == "/nonexistent-run/select/keep.jsonl" and grpo.data.format is None


def test_demo_select_trains_grpo_on_the_rows_whose_samples_disagree(tmp_path, in_repo, answering_model):
    shrink = {"sft": {"max_train_samples": 8, "max_steps": 1},
              "select": {"train_split": "train[192:204]", "max_new_tokens": 20, "batch_size": 12},
              "grpo": {"max_steps": 1, "max_completion_length": 20, "per_device_train_batch_size": 8},
              "eval": {"max_test_samples": 4, "max_new_tokens": 20}}  # fmt: skip
    draft = tiny_recipe(tmp_path, "demo_select", "unused", shrink, base="pipeline.yaml")
    answers = ("<think>ok</think>\n<answer>happy</answer>", "<think>ok</think>\n<answer>sad</answer>")
    model = answering_model(stage_prompts(draft, "select"), answers)
    recipe = tiny_recipe(tmp_path, "demo_select", model, shrink, {"sft": "sft", "grpo": "grpo"}, base="pipeline.yaml")
    run = tmp_path / "run"
    manifest, report = run_recipe(recipe, run)

    assert_all_done(manifest, ["sft", "select", "grpo", "eval"])
    summary = manifest["stages"]["select"]["summary"]
    samples = read_jsonl(run / "select" / "samples.jsonl")
    rates = [sum(score > 0.5 for score in sample["emotion_wheel"]) / 4 for sample in samples]
    keep = [r for r in read_jsonl(run / "select" / "keep.jsonl") if r["split"] == "train"]
    assert summary["rows"] == len(samples) == 12 and summary["counts"]["keep"] == len(keep) > 0
    assert sorted(r["pass_rate"] for r in keep) == sorted(rate for rate in rates if 0 < rate < 1)
    # GRPO trained on exactly the kept rows and held out demo:emotion's test split
    assert manifest["stages"]["grpo"]["rows"]["train_rows"] == len(keep)
    test_rows = [row for row in read_demo("emotion").rows if row["split"] == "test"]
    assert manifest["stages"]["grpo"]["rows"]["heldout_rows"] == len(test_rows) > 0
    assert "rewards/emotion_wheel/mean" in manifest["stages"]["grpo"]["metrics"]
    assert list(report["checkpoints"]) == ["sft", "grpo"] and report["n_rows"] == 4
    assert {"ew_f_level1", "accuracy", "format"} <= set(report["summary"]["grpo"])
