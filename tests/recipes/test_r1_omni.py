"""recipes/r1_omni: cold-start SFT -> GRPO (accuracy + format, R1-Omni's) -> eval, in text mode."""

from recipe_runs import (
    assert_all_done,
    plan_gpu_pipeline,
    read_jsonl,
    run_recipe,
    tiny_recipe,
)


def test_r1_omni_gpu_recipe_validates():
    plans = plan_gpu_pipeline("r1_omni")
    sft, grpo = plans["sft"].stage_config, plans["grpo"].stage_config
    data = sft.data
    assert (data.format, data.ignore_media, data.task, data.template) == ("r1_omni", True, "label", "r1")
    assert grpo.data.system_prompt == sft.data.system_prompt and "<think> </think>" in sft.data.system_prompt
    # 16 prompts x 8 generations per optimizer step on R1-Omni's 8 GPUs: 8 completions per GPU, 2 accumulations
    assert (grpo.training.per_device_train_batch_size, grpo.training.gradient_accumulation_steps) == (8, 2)
    assert grpo.training.reward_weights == [1.0, 1.0]  # a plain sum
    assert plans["grpo"].config["model"]["model_name_or_path"] == "/nonexistent-run/sft"


def test_r1_omni_cpu_pipeline_runs_on_the_tiny_model(tmp_path, in_repo, tiny_model_dir):
    shrink = {"sft": {"max_steps": 1}, "grpo": {"max_steps": 1, "max_completion_length": 16},
              "eval": {"max_new_tokens": 16}}  # fmt: skip
    recipe = tiny_recipe(tmp_path, "r1_omni", tiny_model_dir, shrink, {"base": tiny_model_dir, "grpo": "grpo"})
    run = tmp_path / "run"
    manifest, report = run_recipe(recipe, run)

    assert_all_done(manifest, ["sft", "grpo", "eval"])
    sft, grpo = manifest["stages"]["sft"], manifest["stages"]["grpo"]
    assert (sft["rows"]["train_rows"], sft["rows"]["heldout_rows"]) == (6, 2)  # 8 cold-start rows
    assert (grpo["rows"]["train_rows"], grpo["rows"]["heldout_rows"]) == (9, 3)  # 12 RL rows
    # the cold-start rows are trained on their own <think>/<answer> turns; the RL rows carry bare labels
    assert all(row["completion"].startswith("<think>") for row in read_jsonl(run / "sft" / "heldout.jsonl"))
    rl_rows = read_jsonl(run / "grpo" / "heldout.jsonl")
    assert all(row["completion"] is None and row.get("video") is None for row in rl_rows)
    assert {"rewards/accuracy/mean", "rewards/format/mean"} <= set(grpo["metrics"])
    assert report["task"] == "label" and report["n_rows"] == 4
    assert sorted(report["classes"]) == ["angry", "fear", "happy", "sad"]
    assert {"accuracy", "uar", "war", "format"} <= set(report["summary"]["grpo"])
