"""recipes/kardia_r1: SFT on KardiaBench turns (four special-token spans) -> GRPO with the empathy rubric judge
-> eval with the judge. The judge here is the scripted OpenAI-compatible server of tests/rewards/judge_fakes.py,
found through AFFECT_RL_JUDGE_URL as the Slurm launcher sets it."""

import importlib.util
import re
import sys

import pytest
from recipe_runs import (
    REPO,
    assert_all_done,
    plan_gpu_pipeline,
    read_jsonl,
    run_recipe,
    stage_prompts,
    tiny_recipe,
)

STAGES = ["sft", "grpo", "eval"]
KARDIA_SPANS = ("<|understanding_begin|>", "<|reasoning_begin|>", "<|emotion_begin|>", "<|response_begin|>")


def _judge_fakes():
    """tests/rewards/judge_fakes.py (not on the path when only tests/recipes runs), imported once."""
    if "judge_fakes" not in sys.modules:
        spec = importlib.util.spec_from_file_location("judge_fakes", REPO / "tests" / "rewards" / "judge_fakes.py")
        sys.modules["judge_fakes"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["judge_fakes"])
    return sys.modules["judge_fakes"]


judge_fakes = _judge_fakes()


@pytest.fixture()
def fake_judge(monkeypatch):
    """A judge that scores every dimension 4 of 5 (reward (4 - 1) / 4 = 0.75), reached through AFFECT_RL_JUDGE_URL."""
    judge = judge_fakes.FakeJudge(lambda body: judge_fakes.Reply(content=judge_fakes.ALL_FOURS))
    monkeypatch.setenv("AFFECT_RL_JUDGE_URL", judge.url)
    yield judge
    judge.close()


def test_kardia_r1_gpu_recipe_validates():
    plans = plan_gpu_pipeline("kardia_r1")
    sft, grpo = plans["sft"].stage_config, plans["grpo"].stage_config
    assert (sft.data.format, sft.data.task, sft.data.template) == ("kardiabench", "empathy", "kardia")
    assert [entry["name"] for entry in grpo.recipe.rewards] == ["accuracy", "rubric", "format"]
    assert plans["eval"].config["judge"]["rubric"] == "empathy"


def test_kardia_r1_cpu_pipeline_trains_with_the_judge(tmp_path, in_repo, answering_model, fake_judge):
    shrink = {"sft": {"max_steps": 1}, "grpo": {"max_steps": 1, "max_completion_length": 64},
              "eval": {"max_new_tokens": 64}}  # fmt: skip
    draft = tiny_recipe(tmp_path, "kardia_r1", "unused", shrink)
    answers = tuple(f"<|understanding_begin|>u<|understanding_end|><|reasoning_begin|>r<|reasoning_end|>"
                    f"<|emotion_begin|>{emotion}<|emotion_end|><|response_begin|>I hear you.<|response_end|>"
                    for emotion in ("sad", "anxious"))  # fmt: skip
    model = answering_model(stage_prompts(draft, "grpo"), answers)
    recipe = tiny_recipe(tmp_path, "kardia_r1", model, shrink, {"grpo": "grpo"})
    run = tmp_path / "run"
    manifest, report = run_recipe(recipe, run)

    assert_all_done(manifest, STAGES)
    # one row per assistant turn, held out by whole dialogue: 6 dialogues x 2 turns, 2 dialogues held out
    rows = manifest["stages"]["sft"]["rows"]
    assert (rows["train_rows"], rows["heldout_rows"]) == (8, 4)
    heldout = read_jsonl(run / "sft" / "heldout.jsonl")
    users = sorted(row["anon_username"] for row in heldout)
    assert len(set(users)) == 2 and sorted((row["anon_username"], row["turn"]) for row in heldout) == [
        (users[0], 1), (users[0], 2), (users[2], 1), (users[2], 2)]  # fmt: skip
    # every turn is taught in the official special-token spelling (one dialogue is written with <tags>)
    assert all(all(span in row["completion"] for span in KARDIA_SPANS) for row in heldout)
    metrics = manifest["stages"]["grpo"]["metrics"]
    assert {"rewards/accuracy/mean", "rewards/rubric/mean", "rewards/format/mean"} <= set(metrics)
    assert fake_judge.bodies and all(body["model"] == "fake" for body in fake_judge.bodies)  # the listed model
    asked = [body["messages"][-1]["content"] for body in fake_judge.bodies]
    # The judge grades the <response> span alone: no other span's marker reaches it. Sampling may stray
    # from the two taught answers (the tiny model is not exact), so most replies, not all, are the taught one.
    replies = [re.search(r'Reply to grade \(block (\w+)\):\n"""\n(.*?)\n""" \(end of block \1\)', question, re.S)[2]
               for question in asked]  # fmt: skip
    assert not any("_begin|>" in reply or "_end|>" in reply for reply in replies)
    assert sum(reply == "I hear you." for reply in replies) > len(replies) / 2
    assert report["task"] == "empathy" and report["n_rows"] == 4
    assert {"judge", "accuracy", "format"} <= set(report["summary"]["grpo"])
    assert 0.0 <= report["summary"]["grpo"]["judge"] <= 0.75
