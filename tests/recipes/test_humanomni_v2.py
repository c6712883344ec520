"""recipes/humanomni_v2: SFT -> select (0 < pass rate < 0.75 over 8 rollouts) -> GRPO -> GRPO (num_iterations 2)
-> eval."""

from recipe_runs import (
    assert_all_done,
    plan_gpu_pipeline,
    read_jsonl,
    run_recipe,
    stage_prompts,
    tiny_recipe,
)

STAGES = ["sft", "select", "grpo", "grpo2", "eval"]


def test_humanomni_v2_gpu_recipe_validates():
    plans = plan_gpu_pipeline("humanomni_v2")
    assert list(plans) == STAGES
    select, grpo, grpo2 = (plans[name].stage_config for name in ("select", "grpo", "grpo2"))
    settings = select.training
    assert (settings.num_samples, settings.pass_threshold, settings.keep_band) == (8, 0.2, [0.0, 0.75])
    assert grpo.data.dataset == grpo2.data.dataset == "/nonexistent-run/select/keep.jsonl"
    assert grpo.training.reward_weights == [1.0, 1.0, 1.0, 0.0, 0.0]  # the judged rewards are logged only
    assert (grpo.training.num_iterations, grpo2.training.num_iterations) == (1, 2)
    # 2 prompts x 8 completions per step (stage 2), 1 prompt (stage 3), on HumanOmniV2's 8 GPUs
    assert (grpo.training.generation_batch_size, grpo2.training.generation_batch_size) == (16, 8)
    assert plans["sft"].stage_config.data.format_options["context_from_solution"] is True


def test_humanomni_v2_cpu_pipeline_keeps_the_informative_rows_and_trains_twice(tmp_path, in_repo, answering_model):
    shrink = {"sft": {"max_steps": 1},
              "select": {"max_new_tokens": 24},
              "grpo": {"max_steps": 1, "max_completion_length": 24},
              "grpo2": {"max_steps": 1, "max_completion_length": 24},
              "eval": {"max_new_tokens": 24}}  # fmt: skip
    draft = tiny_recipe(tmp_path, "humanomni_v2", "unused", shrink)
    answers = tuple(f"<context>c</context><think>t</think>\n<answer>{letter}</answer>" for letter in "AB")
    model = answering_model(stage_prompts(draft, "select"), answers)
    recipe = tiny_recipe(tmp_path, "humanomni_v2", model, shrink, {"grpo2": "grpo2"})
    run = tmp_path / "run"
    manifest, report = run_recipe(recipe, run)

    assert_all_done(manifest, STAGES)
    samples = read_jsonl(run / "select" / "samples.jsonl")
    # each row's rate: the share of its 8 rollouts whose (one applicable) accuracy exceeds 0.2
    rates = [sum((a if a is not None else b) > 0.2 for a, b in zip(s["accuracy"], s["accuracy_2"])) / 8
             for s in samples]  # fmt: skip
    keep = [row for row in read_jsonl(run / "select" / "keep.jsonl") if row["split"] == "train"]
    drop = [row for row in read_jsonl(run / "select" / "drop.jsonl") if row["split"] == "train"]
    assert len(samples) == 6 and len(keep) + len(drop) == 6 and keep
    assert sorted(row["pass_rate"] for row in keep) == sorted(rate for rate in rates if 0 < rate < 0.75)
    assert sorted(row["pass_rate"] for row in drop) == sorted(rate for rate in rates if not 0 < rate < 0.75)
    for name in ("grpo", "grpo2"):
        record = manifest["stages"][name]
        assert record["rows"]["train_rows"] == len(keep) and record["rows"]["heldout_rows"] == 4
        # (a routed reward is logged when its problem type was drawn: accuracy MC, accuracy_2 emer_ov_mc)
        assert "rewards/format/mean" in record["metrics"]
        assert {"rewards/accuracy/mean", "rewards/accuracy_2/mean"} & set(record["metrics"])
    assert manifest["stages"]["grpo2"]["config"]["training"]["num_iterations"] == 2
    assert report["task"] == "choice" and report["n_rows"] == 4
    assert {"exact_match", "set_f1", "format"} <= set(report["summary"]["grpo2"])
