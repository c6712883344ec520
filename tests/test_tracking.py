"""W&B: one run per stage, named after the pipeline run and grouped by it; offline without a key;
the GRPO completions table carries the gold column."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from affect_rl import sft, tracking
from affect_rl.config import RecipeArguments, build_stage_config

WANDB_VARIABLES = ("WANDB_MODE", "WANDB_API_KEY", "WANDB_DIR", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_RUN_GROUP",
                   "WANDB_JOB_TYPE")


@pytest.fixture()
def clean_wandb_environment(monkeypatch, tmp_path):
    for name in WANDB_VARIABLES:
        monkeypatch.setenv(name, "")  # recorded, so the variables the stages set are undone afterwards
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc credentials
    monkeypatch.setattr(tracking, "has_wandb_credentials", lambda: False)


def read_offline_run(run_dir: Path) -> dict:
    """The run record (name, group, project, ...) and the logged history keys of an offline run.

    An offline run is one ``run-ID.wandb`` file: a LevelDB-style log of protobuf ``Record``s in
    32 KiB blocks (7-byte header ``:W&B`` + magic + version, then chunks of crc32, length, type;
    type 1 = a whole record, 2/3/4 = its first/middle/last part), as wandb's transaction log writes it.
    """
    from wandb.proto import wandb_internal_pb2

    (path,) = run_dir.glob("run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, pending, run, history_keys = 7, b"", None, set()
    while position + 7 <= len(data):
        left_in_block = 32768 - position % 32768
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        if left_in_block < 7 or (kind == 0 and length == 0):  # block padding
            position += left_in_block
            continue
        pending += data[position + 7:position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "run":
                run = record.run
            elif record.WhichOneof("record_type") == "history":
                history_keys.update(item.key or "/".join(item.nested_key) for item in record.history.item)
    return {"name": run.display_name, "group": run.run_group, "project": run.project, "entity": run.entity,
            "job_type": run.job_type, "history": history_keys}


def test_wandb_without_key_goes_offline_and_says_how_to_sync(tiny_model_dir, emotion_file, tmp_path,
                                                             clean_wandb_environment, capsys):
    output_dir = tmp_path / "out"
    values = {"model_name_or_path": tiny_model_dir, "dataset": emotion_file, "task": "emotion",
              "output_dir": str(output_dir), "max_steps": 1, "per_device_train_batch_size": 2,
              "report_to": "wandb", "save_strategy": "no", "num_sample_prompts": 0, "bf16": False}
    sft.train(build_stage_config("sft", values, "test"))

    assert tracking.os.environ["WANDB_MODE"] == "offline"
    runs = list((output_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].iterdir())
    out = capsys.readouterr().out
    assert f"wandb sync {output_dir.resolve()}/wandb/offline-run-*" in out
    tracking.end_stage_run()


def stage(report_to="wandb", output_dir="out", stage_kind="sft", **recipe):
    return SimpleNamespace(stage=stage_kind, training=SimpleNamespace(report_to=report_to, output_dir=output_dir),
                           recipe=RecipeArguments(**recipe))


def test_recipe_keys_set_the_stage_environment_and_ending_the_stage_restores_it(clean_wandb_environment, monkeypatch,
                                                                               tmp_path):
    monkeypatch.setenv("WANDB_PROJECT", "from-the-shell")
    tracking.prepare_tracking(stage(output_dir=str(tmp_path / "sft"), wandb_project="emotions", wandb_entity="lab"))
    assert {name: tracking.os.environ.get(name) for name in WANDB_VARIABLES} == {
        "WANDB_MODE": "offline", "WANDB_API_KEY": None, "WANDB_DIR": str(tmp_path / "sft"),
        "WANDB_PROJECT": "emotions", "WANDB_ENTITY": "lab", "WANDB_RUN_GROUP": None, "WANDB_JOB_TYPE": "sft"}
    tracking.end_stage_run()
    assert {name: tracking.os.environ.get(name) for name in WANDB_VARIABLES} == {
        **dict.fromkeys(WANDB_VARIABLES), "WANDB_PROJECT": "from-the-shell"}

    tracking.prepare_tracking(stage(output_dir=str(tmp_path / "grpo"), stage_kind="grpo"))
    assert tracking.os.environ["WANDB_PROJECT"] == "from-the-shell"  # the variable, without a recipe key
    assert tracking.os.environ["WANDB_DIR"] == str(tmp_path / "grpo") and "WANDB_ENTITY" not in tracking.os.environ
    tracking.end_stage_run()


def test_online_mode_is_respected_and_tensorboard_only_sets_nothing(clean_wandb_environment, monkeypatch):
    tracking.prepare_tracking(stage(report_to=["tensorboard"]))
    assert "WANDB_PROJECT" not in tracking.os.environ
    monkeypatch.setenv("WANDB_MODE", "online")
    tracking.prepare_tracking(stage(report_to=["wandb", "tensorboard"]))
    assert tracking.os.environ["WANDB_MODE"] == "online"
    tracking.end_stage_run()
    assert tracking.os.environ["WANDB_MODE"] == "online"


ROWS = [{"text": f"Row {i}: my sister flew home.", "emotions": ["happy", "excited"] if i % 2 else ["sad"]}
        for i in range(8)]


@pytest.mark.slow
def test_pipeline_logs_one_offline_run_per_stage_grouped_by_the_run_with_the_gold_column(
        tiny_model_dir, tmp_path, clean_wandb_environment):
    from affect_rl.pipeline import run_pipeline_file

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    common = {"model_name_or_path": tiny_model_dir, "dataset": str(data), "task": "emotion", "template": "r1",
              "report_to": "wandb", "wandb_project": "affect-rl-tests", "wandb_entity": "lab", "bf16": False,
              "num_sample_prompts": 0, "logging_steps": 1, "save_strategy": "no", "max_steps": 1}
    recipes = {
        "sft.yaml": dict(common, per_device_train_batch_size=2),
        "grpo.yaml": dict(common, per_device_train_batch_size=4, num_generations=2, max_completion_length=8,
                          log_completions=True, rewards=[{"name": "emotion_wheel", "weight": 1.0}]),
        "pipeline.yaml": {"name": "tiny", "stages": [
            {"name": "sft", "stage": "sft", "config": "sft.yaml"},
            {"name": "grpo", "stage": "grpo", "config": "grpo.yaml", "model_from": "sft"}]},
    }
    for name, content in recipes.items():
        (tmp_path / name).write_text(yaml.safe_dump(content))
    run_pipeline_file(str(tmp_path / "pipeline.yaml"), output_dir=str(tmp_path / "run"))

    runs = {}
    for stage_name in ("sft", "grpo"):
        (run_dir,) = (tmp_path / "run" / stage_name / "wandb").glob("offline-run-*")
        runs[stage_name] = read_offline_run(run_dir)
        assert {key: runs[stage_name][key] for key in ("name", "group", "project", "entity", "job_type")} == {
            "name": f"tiny-{stage_name}", "group": "tiny", "project": "affect-rl-tests", "entity": "lab",
            "job_type": stage_name}
    assert "train/loss" in runs["sft"]["history"] and "train/reward" not in runs["sft"]["history"]
    assert "train/reward" in runs["grpo"]["history"] and "completions/_type" in runs["grpo"]["history"]

    tables = [json.loads(path.read_text()) for path in (run_dir / "files" / "media" / "table").glob("completions_*")]
    assert tables  # TRL logs the table at every log call (here the step and the end of training)
    for table in tables:
        golds = [row[table["columns"].index("gold")] for row in table["data"]]
        assert len(golds) == 4 and all(json.loads(gold) in ([["happy", "excited"], ["sad"]]) for gold in golds)
