"""recipes/psyche_r1: select routes hard rows to GRPO and easy rows to SFT (issue 13, item 3) -> eval on PCEB rows."""

from recipe_runs import (
    assert_all_done,
    plan_gpu_pipeline,
    read_jsonl,
    run_recipe,
    stage_prompts,
    tiny_recipe,
)

STAGES = ["select", "sft", "grpo", "eval"]


def test_psyche_r1_gpu_recipe_validates():
    plans = plan_gpu_pipeline("psyche_r1")
    assert list(plans) == STAGES
    assert plans["sft"].stage_config.data.dataset == "/nonexistent-run/select/easy.jsonl"
    assert plans["grpo"].stage_config.data.dataset == "/nonexistent-run/select/hard.jsonl"
    assert plans["grpo"].config["model"]["model_name_or_path"] == "/nonexistent-run/sft"
    assert plans["select"].config["model"]["model_name_or_path"] == "Qwen/Qwen2.5-7B-Instruct"
    assert plans["eval"].config["format"] == "pceb" and plans["eval"].config["task"] == "choice"


def test_psyche_r1_cpu_pipeline_routes_easy_rows_to_sft_and_hard_rows_to_grpo(tmp_path, in_repo, answering_model):
    shrink = {"select": {"max_new_tokens": 16}, "sft": {"max_steps": 1},
              "grpo": {"max_steps": 1, "max_completion_length": 16}, "eval": {"max_new_tokens": 16}}  # fmt: skip
    draft = tiny_recipe(tmp_path, "psyche_r1", "unused", shrink)
    # a model that always answers A: right on the rows whose only correct option is A, wrong on the others
    model = answering_model(stage_prompts(draft, "select"), ("<think>ok</think>\n<answer>A</answer>",))
    recipe = tiny_recipe(tmp_path, "psyche_r1", model, shrink, {"grpo": "grpo"})
    run = tmp_path / "run"
    manifest, report = run_recipe(recipe, run)

    assert_all_done(manifest, STAGES)
    easy = [row for row in read_jsonl(run / "select" / "easy.jsonl") if row["split"] == "train"]
    hard = [row for row in read_jsonl(run / "select" / "hard.jsonl") if row["split"] == "train"]
    assert easy and hard and all(row["answer"] == ["A"] and row["pass_rate"] >= 0.5 for row in easy)
    assert all(row["pass_rate"] < 0.5 for row in hard)
    assert len(easy) + len(hard) == manifest["stages"]["select"]["summary"]["rows"]
    assert manifest["stages"]["sft"]["rows"]["train_rows"] == len(easy)
    assert manifest["stages"]["grpo"]["rows"]["train_rows"] == len(hard)
    assert {"rewards/accuracy/mean", "rewards/format/mean"} <= set(manifest["stages"]["grpo"]["metrics"])
    assert report["task"] == "choice" and report["n_rows"] == 4  # cpu_data/pceb_test.json
    assert {"exact_match", "set_f1", "format"} <= set(report["summary"]["grpo"])
