"""The select and synthesize stages: pass rates, output datasets a later stage can train on, verified synthesis."""

import json

import pytest

from affect_rl import synthesize
from affect_rl.config import build_stage_config
from affect_rl.data import DataArguments, load_splits, to_sft_dataset
from affect_rl.errors import ConfigError, DataError
from affect_rl.pipeline import check_training_rows

FACES = [
    {"id": f"f{i}", "description": f"face {i}", "aus": [6, 12] if i % 2 else [1, 4, 15],
     "emotion": "happiness" if i % 2 else "sadness", "split": "train" if i < 6 else "test"}
    for i in range(8)
]  # fmt: skip


@pytest.fixture()
def faces_file(tmp_path):
    path = tmp_path / "faces.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in FACES))
    return path


def stage_config(stage, model, data, out, **values):
    base = {"model_name_or_path": model, "dataset": str(data), "task": "facial", "template": "r1",
            "output_dir": str(out), "max_new_tokens": 6, "batch_size": 4}  # fmt: skip
    return build_stage_config(stage, base | values, "test recipe")


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("threshold, rate", [(-0.5, 1.0), (0.5, 0.0)])
def test_select_writes_datasets_by_pass_rate_with_the_heldout_rows(tiny_model_dir, faces_file, tmp_path, threshold, rate):
    from affect_rl.select import run

    out = tmp_path / "select"
    cfg = stage_config("select", tiny_model_dir, faces_file, out, num_samples=3, pass_reward="format",
                       pass_threshold=threshold, rewards=[{"name": "format"}, {"name": "accuracy"}])  # fmt: skip
    summary = run(cfg)
    # A random model never writes the template: format scores 0, which passes a -0.5 bar and fails 0.5.
    assert summary["mean_pass_rate"] == rate and summary["rows"] == 6
    expected = {"keep": 0, "drop": 6, "hard": 6 if rate == 0.0 else 0, "easy": 0 if rate == 0.0 else 6}
    assert summary["counts"] == expected
    for name, count in expected.items():
        rows = read_jsonl(out / f"{name}.jsonl")
        assert [r["split"] for r in rows].count("train") == count
        assert [r["id"] for r in rows if r["split"] == "test"] == ["f6", "f7"]
        assert all(r["pass_rate"] == rate for r in rows if r["split"] == "train")
    samples = read_jsonl(out / "samples.jsonl")
    assert len(samples) == 6 and all(len(s["completions"]) == 3 and s["format"] == [0.0] * 3 for s in samples)
    assert (out / "pass_rates.png").stat().st_size > 5_000
    # A later stage trains on the selection and holds out the same rows.
    splits = load_splits(DataArguments(dataset=str(out / "drop.jsonl"), task="facial"))
    assert (len(splits["train"]), [r["id"] for r in splits["test"]]) == (6, ["f6", "f7"])


def test_select_refuses_an_unknown_pass_reward_and_a_bad_band(tiny_model_dir, faces_file, tmp_path):
    with pytest.raises(ConfigError, match=r"keep_band is \[low, high\] with 0 <= low < high <= 1"):
        stage_config("select", tiny_model_dir, faces_file, tmp_path, keep_band=[0.8, 0.2], rewards=[{"name": "format"}])
    with pytest.raises(ConfigError, match="a GRPO stage needs `rewards:`|needs `rewards:`"):
        stage_config("select", tiny_model_dir, faces_file, tmp_path)


@pytest.mark.parametrize("stage", ["select", "synthesize"])
def test_a_data_stage_length_budget_follows_its_max_new_tokens(faces_file, tmp_path, stage):
    """The length reward scores a data stage's samples against the tokens they may use, as GRPO's."""
    from affect_rl.config import validate_rewards

    cfg = stage_config(stage, "unused", faces_file, tmp_path, rewards=[{"name": "length", "buffer": 2}])
    assert validate_rewards(cfg)[0].options["max_length"] == 6


def test_a_pipeline_plans_a_select_stage_and_hashes_its_settings(faces_file, tmp_path):
    from affect_rl.pipeline import plan_stage

    (tmp_path / "select.yaml").write_text(f"dataset: {faces_file}\ntask: facial\nrewards: [{{name: format}}]\n")
    stage = {"name": "select", "stage": "select", "config": str(tmp_path / "select.yaml")}
    plan = plan_stage(stage, tmp_path / "run", "run")
    assert plan.config["training"]["num_samples"] == 8 and plan.config["training"]["keep_band"] == [0.0, 0.75]
    assert plan.config["training"]["output_dir"] == str(tmp_path / "run" / "select") and len(plan.hash) == 64


def scripted_generation(calls):
    """A model that gets a face wrong at first and right once shown its rejected attempt."""

    def generate(model, prompts, **kwargs):
        calls.append([p[-1]["content"] for p in prompts])
        completions = []
        for prompt in prompts:
            user = prompt[-1]["content"]
            gold = user.split("Your final answer must be exactly: ")[1].split("\n")[0]
            aus = user.split("identify these Action Units: ")[1].split(".")[0]
            if "### Your previous attempt" in user:
                completions.append(f"<think>I see {aus}.</think>\n<answer>{gold}</answer>")
            else:
                completions.append("<think>I see AU9.</think>\n<answer>disgust</answer>")
        return completions

    return generate


def test_synthesize_retries_with_the_reasons_and_keeps_only_verified_reasoning(faces_file, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(synthesize, "generate_completions", scripted_generation(calls))
    out = tmp_path / "synth"
    cfg = stage_config("synthesize", "unused-model", faces_file, out, retries=2,
                       rewards=[{"name": "format"}, {"name": "accuracy"}, {"name": "au_f1"}])  # fmt: skip
    summary = synthesize.run(cfg)
    assert summary["rounds"] == [{"round": 1, "rows": 6, "accepted": 6, "attempts": 12, "acceptance_rate": 1.0}]
    first, second = calls
    assert "Your final answer must be exactly: sadness" in first[0] and "AU1, AU4, AU15" in first[0]
    assert "It was rejected: format" not in first[0]
    assert "accuracy scored 0 (needs 1); au_f1 scored -1 (needs 1)" in second[0]
    rows = read_jsonl(out / "synthesized.jsonl")
    trained = [r for r in rows if r["split"] == "train"]
    assert trained[0]["completion"] == "<think>I see AU1, AU4, AU15.</think>\n<answer>sadness</answer>"
    assert [r["id"] for r in rows if r["split"] == "test"] == ["f6", "f7"]
    # The SFT data pairs the verified reasoning with the plain prompt: no hint leaks into training.
    args = DataArguments(dataset=str(out / "synthesized.jsonl"), task="facial")
    sft = to_sft_dataset(load_splits(args)["train"], args)
    assert all("Ground truth" not in example["prompt"][-1]["content"] for example in sft)
    assert sft[0]["completion"][0]["content"] == trained[0]["completion"]


def test_synthesize_reports_rows_it_could_not_verify(faces_file, tmp_path, monkeypatch):
    monkeypatch.setattr(synthesize, "generate_completions",
                        lambda model, prompts, **kw: ["<answer>disgust</answer>"] * len(prompts))
    cfg = stage_config("synthesize", "unused", faces_file, tmp_path / "s", retries=1, rounds=2,
                       rewards=[{"name": "format"}], accept={"format": 1.0})  # fmt: skip
    with pytest.raises(DataError, match="accepted none of 6 rows"):
        synthesize.run(cfg)  # the SFT stage after it would have nothing to train on
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())  # the rounds are still reported
    assert [r["accepted"] for r in summary["rounds"]] == [0, 0] and summary["kept_after_dedup"] == 0
    assert [r["attempts"] for r in summary["rounds"]] == [12, 12]


def test_a_stage_reading_an_empty_data_stage_output_stops_before_loading(tmp_path):
    (tmp_path / "select").mkdir()
    (tmp_path / "select" / "keep.jsonl").write_text(json.dumps({"id": "t1", "split": "test"}) + "\n")
    (tmp_path / "select" / "drop.jsonl").write_text(json.dumps({"id": "r1", "split": "train"}) + "\n")
    with pytest.raises(DataError, match="select/keep has no training rows"):
        check_training_rows("select/keep", tmp_path)
    check_training_rows("select/drop", tmp_path)


@pytest.mark.parametrize("stage, refusal", [
    ("synthesize", None),  # greedy, as Facial-R1's synthesis
    ("select", "temperature must be > 0 to sample several different completions"),
    ("grpo", "GRPO samples a group of completions per prompt, so temperature must be above 0"),
])
def test_temperature_zero_is_greedy_for_synthesize_and_refused_where_groups_are_sampled(stage, refusal):
    values = {"temperature": 0.0, "rewards": [{"name": "format"}], "dataset": "demo:emotion"}
    if refusal is None:
        assert build_stage_config(stage, values, "x.yaml").training.temperature == 0.0
    else:
        with pytest.raises(ConfigError, match=refusal):
            build_stage_config(stage, values, "x.yaml")
