"""recipes/affectgpt_r1: SFT on descriptions -> GRPO (community emotion wheel 1.0 + format 0.1) -> eval, text mode."""

from recipe_runs import assert_all_done, plan_gpu_pipeline, run_recipe, tiny_recipe


def test_affectgpt_r1_gpu_recipe_validates():
    plans = plan_gpu_pipeline("affectgpt_r1")
    sft, grpo = plans["sft"].stage_config, plans["grpo"].stage_config
    assert (sft.data.format, sft.data.task, sft.data.template) == ("mer_openset", "emotion", "r1")
    assert grpo.training.reward_weights == [1.0, 0.1]
    # 2 prompts x 8 completions per step on the reproduction's 8 GPUs (2 completions per GPU)
    assert (grpo.training.per_device_train_batch_size, grpo.training.generation_batch_size) == (2, 16)
    assert grpo.training.scale_rewards == "none" and grpo.training.loss_type == "bnpo"


def test_affectgpt_r1_cpu_pipeline_runs_on_the_tiny_model(tmp_path, in_repo, tiny_model_dir):
    shrink = {"sft": {"max_steps": 1}, "grpo": {"max_steps": 1, "max_completion_length": 16},
              "eval": {"max_new_tokens": 16}}  # fmt: skip
    recipe = tiny_recipe(tmp_path, "affectgpt_r1", tiny_model_dir, shrink, {"base": tiny_model_dir, "grpo": "grpo"})
    manifest, report = run_recipe(recipe, tmp_path / "run")

    assert_all_done(manifest, ["sft", "grpo", "eval"])
    for stage in ("sft", "grpo"):
        rows = manifest["stages"][stage]["rows"]
        assert (rows["train_rows"], rows["heldout_rows"]) == (12, 4)
    assert {"rewards/emotion_wheel/mean", "rewards/format/mean"} <= set(manifest["stages"]["grpo"]["metrics"])
    assert report["task"] == "emotion" and report["n_rows"] == 4
    assert {"ew_f_level1", "ew_p_level1", "ew_r_level1", "format"} <= set(report["summary"]["grpo"])
