"""recipes/facial_r1: SFT on FEA-20K reasoning -> GRPO (R_AU + R_acc + R_format, Facial-R1's) -> synthesis
(verified self-written reasoning) -> SFT on it -> eval, on images."""

import re
from pathlib import Path

import pytest
from recipe_runs import (
    REPO,
    assert_all_done,
    plan_gpu_pipeline,
    read_jsonl,
    run_recipe,
    tiny_recipe,
)

from affect_rl.data.heldout import trained_on

IMAGES = REPO / "recipes" / "facial_r1" / "cpu_data" / "images"
STAGES = ["sft", "grpo", "synthesize", "sft_synth", "eval"]
HINT = re.compile(r"these Action Units: (?P<aus>[^.]*)\.\n.*must be exactly: (?P<label>\w+)", re.DOTALL)
R1 = re.compile(r"<think>.+</think>\n<answer>\w+</answer>", re.DOTALL)


@pytest.fixture()
def scripted_synthesis(monkeypatch):
    """The synthesize stage's model, scripted (a random tiny VLM never writes verifiable reasoning): a first
    attempt names no AUs and the wrong emotion; a retry (its prompt shows the rejected attempt) follows the
    hint, except on the fear face, which stays wrong. Records each call's prompts and images."""
    from affect_rl import synthesize

    calls = []

    def generate(model, prompts, *, images=None, **kwargs):
        calls.append((prompts, images))
        completions = []
        for prompt in prompts:
            user = prompt[-1]["content"]
            gold = HINT.search(user)
            if "### Your previous attempt" in user and gold["label"] != "fear":
                label = gold["label"]
                completions.append(f"<think>I see {gold['aus']}: {label}.</think>\n<answer>{label}</answer>")
            else:
                completions.append("<think>A face.</think>\n<answer>neutral</answer>")
        return completions

    monkeypatch.setattr(synthesize, "generate_completions", generate)
    return calls


def test_facial_r1_gpu_recipe_validates():
    plans = plan_gpu_pipeline("facial_r1")
    sft, grpo = plans["sft"].stage_config, plans["grpo"].stage_config
    assert (sft.data.format, sft.data.task, sft.data.template) == ("fea20k", "facial", "r1")
    assert grpo.training.reward_weights == [1.0, 1.0, 1.0]  # R = R_AU + R_acc + R_format
    assert plans["grpo"].config["model"]["model_name_or_path"] == "/nonexistent-run/sft"
    assert list(plans) == STAGES
    synthesis = plans["synthesize"].stage_config
    assert synthesis.model.model_name_or_path == "/nonexistent-run/grpo"  # infer_emotion.sh:28
    assert (synthesis.training.retries, synthesis.training.temperature, synthesis.training.accept) == (5, 0.0, None)
    assert [entry["name"] for entry in synthesis.recipe.rewards] == ["au_f1", "accuracy", "format"]
    sft_synth = plans["sft_synth"].stage_config
    assert sft_synth.data.dataset == "/nonexistent-run/synthesize/synthesized.jsonl"
    assert plans["sft_synth"].config["model"]["model_name_or_path"] == "/nonexistent-run/grpo"


def test_facial_r1_cpu_pipeline_runs_on_the_tiny_vlm(tmp_path, in_repo, tiny_vlm_dir, eval_images,
                                                     scripted_synthesis):
    shrink = {"sft": {"max_steps": 1}, "grpo": {"max_steps": 1, "max_completion_length": 8},
              "sft_synth": {"max_steps": 1}, "eval": {"max_new_tokens": 8}}  # fmt: skip
    recipe = tiny_recipe(tmp_path, "facial_r1", tiny_vlm_dir, shrink,
                         {"base": tiny_vlm_dir, "grpo": "grpo", "sft_synth": "sft_synth"})  # fmt: skip
    run = tmp_path / "run"
    manifest, report = run_recipe(recipe, run)

    assert_all_done(manifest, STAGES)
    for stage in ("sft", "grpo"):  # train.jsonl's 10 rows less the is_valid: false one, one face listed twice
        rows = manifest["stages"][stage]["rows"]  # (8 distinct rows trained on); test.jsonl held out
        assert (rows["train_rows"], rows["heldout_rows"]) == (8, 4)
    heldout = read_jsonl(run / "sft" / "heldout.jsonl")
    assert all(row["completion"].startswith("<think>") and row["aus"] for row in heldout)  # FEA-20K's targets
    assert all(Path(row["image"]).parent == IMAGES for row in heldout)  # resolved against cpu_data/
    metrics = manifest["stages"]["grpo"]["metrics"]
    assert -1.0 <= metrics["rewards/au_f1/mean"] <= 1.0
    assert 0.0 <= metrics["rewards/accuracy/mean"] <= 1.0 and 0.0 <= metrics["rewards/format/mean"] <= 1.0

    # synthesize: 9 rows, every first attempt rejected and retried with the reasons, fear never verified
    summary = manifest["stages"]["synthesize"]["summary"]
    assert summary["rounds"] == [{"round": 1, "rows": 9, "accepted": 8, "attempts": 18, "acceptance_rate": 8 / 9}]
    assert (summary["accepted"], summary["kept_after_dedup"]) == (8, 7)  # the face listed twice is kept once
    first, retry = scripted_synthesis
    assert all("Your final answer must be exactly:" in prompt[-1]["content"] for prompt in first[0])
    assert all("It was rejected: accuracy scored 0 (needs 1)" in prompt[-1]["content"] for prompt in retry[0])
    assert all([Path(image).parent for image in images] == [IMAGES] for images in first[1])  # the faces
    written = read_jsonl(run / "synthesize" / "synthesized.jsonl")
    synthesized = [row for row in written if row["split"] == "train"]
    assert len(synthesized) == 7 and len({row["image"] for row in synthesized}) == 7
    assert "fear" not in {row["emotion"] for row in synthesized}
    for row in synthesized:
        assert R1.fullmatch(row["completion"]) and row["completion"].endswith(f"<answer>{row['emotion']}</answer>")
        assert all(f"AU{au}" in row["completion"] for au in row["aus"])
    assert [row["id"] for row in written if row["split"] == "test"] == [row["id"] for row in heldout]

    # sft_synth trained on exactly those rows (with their synthesized completions) and held out test.jsonl
    rows = manifest["stages"]["sft_synth"]["rows"]
    assert (rows["train_rows"], rows["heldout_rows"]) == (7, 4)
    assert trained_on(synthesized, run / "sft_synth") == list(range(7))
    assert trained_on(synthesized, run / "sft") == []  # new targets: not the rows stage 1 trained on
    assert manifest["stages"]["sft_synth"]["model_from"] == "grpo"

    # every eval generation (base, grpo, sft_synth) got each test face's image
    assert len(eval_images) == 3
    assert all(sorted(Path(image).name for (image,) in images) == sorted(Path(r["image"]).name for r in heldout)
               for images in eval_images)  # fmt: skip
    assert report["task"] == "facial" and report["n_rows"] == 4
    for checkpoint in ("base", "grpo", "sft_synth"):
        summary = report["summary"][checkpoint]
        for metric in ("accuracy", "au_f1_micro", "au_f1_macro", "format"):
            assert 0.0 <= summary[metric] <= 1.0, (checkpoint, metric, summary[metric])
    assert set(report["breakdown"]) == {"faces-prototype", "faces-variant"}  # per FEA-20K source dataset
    records = read_jsonl(run / "eval" / "completions_grpo.jsonl")
    assert [record["gold_aus"] != [] for record in records] == [True] * 4
