"""Faults never lose finished work: failed re-runs, partial checkpoints, interrupted saves and writes.

(The NaN and signal stops are in test_health.py; restart moving folders aside in test_pipeline.py.)
"""

import json
import os

import pytest
import torch
from pipeline_fixtures import finish_on_disk, tree_bytes, write_pipeline
from safetensors.torch import save_file

from affect_rl import files
from affect_rl.checkpoints import checkpoint_problem, last_complete_checkpoint
from affect_rl.cli import main
from affect_rl.errors import ConfigError
from affect_rl.pipeline import run_pipeline_file, write_manifest


# ---- item 1 (run identity) / 4 (validation) / 6 (pipeline validation): a failed re-run changes nothing ----


@pytest.mark.parametrize("change", [
    {"sft": {"learning_rate": 5e-4}},                                    # another config
    {"sft": {"learning_rate": float("nan")}},                            # a bad value
    {"stages": [{"name": "sft", "stage": "sft", "config": "sft.yaml"}] * 2},  # a bad pipeline
])
def test_a_finished_run_survives_a_failed_rerun_byte_for_byte(tmp_path, change):
    recipe = write_pipeline(tmp_path)
    run_dir = tmp_path / "run"
    finish_on_disk(recipe, run_dir)
    before = tree_bytes(run_dir)
    write_pipeline(tmp_path, **change)
    with pytest.raises(ConfigError):
        run_pipeline_file(str(recipe), output_dir=str(run_dir))
    assert tree_bytes(run_dir) == before


def test_a_standalone_stage_refused_for_its_config_leaves_the_folder_and_its_lock_alone(tmp_path, capsys):
    output = tmp_path / "sft"
    assert main(["sft", "--config", "recipes/demo/sft.yaml", "--output_dir", str(output), "--max_steps", "0"]) == 2
    assert not output.exists()  # a bad value: nothing was created
    from affect_rl.config import load_stage_config
    from affect_rl.run_identity import resolved_config, write_identity

    write_identity(output, resolved_config(load_stage_config("sft", "recipes/demo/sft.yaml",
                                                             ["--output_dir", str(output)])))
    (output / "model.safetensors").write_bytes(b"finished")
    before = tree_bytes(output)
    assert main(["sft", "--config", "recipes/demo/sft.yaml", "--output_dir", str(output), "--seed", "7"]) == 2
    assert "training.seed: 42 -> 7" in capsys.readouterr().err
    assert tree_bytes(output) == before and not (output / ".affect_rl.lock").exists()


# ---- item 2: resume only from complete checkpoints; atomic saves and writes ----


def make_checkpoint(folder, state=True, weights=True, truncate=False):
    folder.mkdir(parents=True)
    if weights:
        save_file({"w": torch.ones(64)}, str(folder / "model.safetensors"))
        if truncate:
            data = (folder / "model.safetensors").read_bytes()
            (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    if state:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": int(folder.name.split("-")[1])}))


def test_resume_skips_partial_checkpoints_and_says_so(tmp_path, caplog):
    make_checkpoint(tmp_path / "checkpoint-2")
    make_checkpoint(tmp_path / "checkpoint-4", state=False)             # killed before trainer_state.json
    make_checkpoint(tmp_path / "checkpoint-6", truncate=True)           # weights cut short
    make_checkpoint(tmp_path / "checkpoint-8", weights=False)           # no weights at all
    (tmp_path / "checkpoint-10").mkdir()
    (tmp_path / "checkpoint-10" / "trainer_state.json").write_text('{"global_st')  # state cut short
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    for step, reason in ((4, "no trainer_state.json"), (6, "model.safetensors is unreadable"),
                         (8, "no weights file"), (10, "trainer_state.json is truncated")):
        assert f"Skipping {tmp_path / f'checkpoint-{step}'}: incomplete checkpoint, {reason}" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"checkpoint-{n}" for n in (10, 2, 4, 6, 8)]  # all kept


def test_sharded_and_deepspeed_checkpoints_count_when_every_part_is_there(tmp_path):
    sharded = tmp_path / "checkpoint-1"
    sharded.mkdir()
    (sharded / "trainer_state.json").write_text("{}")
    save_file({"a": torch.ones(2)}, str(sharded / "model-00001-of-00002.safetensors"))
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    assert checkpoint_problem(sharded) == "model-00002-of-00002.safetensors is missing"
    save_file({"b": torch.ones(2)}, str(sharded / "model-00002-of-00002.safetensors"))
    assert checkpoint_problem(sharded) is None
    zero = tmp_path / "checkpoint-2"
    (zero / "global_step2").mkdir(parents=True)
    (zero / "trainer_state.json").write_text("{}")
    assert checkpoint_problem(zero) == "no weights file"
    (zero / "latest").write_text("global_step2")
    assert checkpoint_problem(zero) is None


def test_an_interrupted_final_save_leaves_the_previous_model_whole(tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from affect_rl.stage import FINAL_STAGING, save_final_model

    output = tmp_path / "sft"
    args = TrainingArguments(output_dir=str(output), use_cpu=True, report_to="none")
    trainer = Trainer(model=AutoModelForCausalLM.from_pretrained(tiny_model_dir), args=args)
    save_final_model(trainer, output)
    saved = tree_bytes(output)
    assert {"model.safetensors", "config.json", "trainer_state.json"} <= set(saved)

    def crash_midway(path, **kwargs):
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "model.safetensors"), "wb") as half:
            half.write(b"\0" * 100)
        raise OSError("No space left on device")

    trainer.save_model = crash_midway
    with pytest.raises(OSError, match="No space left"):
        save_final_model(trainer, output)
    assert {name: data for name, data in tree_bytes(output).items() if not name.startswith(FINAL_STAGING)} == saved
    del trainer.save_model  # the real one again: a new save replaces the leftover staging folder
    save_final_model(trainer, output)
    assert not (output / FINAL_STAGING).exists()
    assert AutoModelForCausalLM.from_pretrained(output).num_parameters() > 0


def test_a_failed_manifest_write_keeps_the_previous_manifest(tmp_path, monkeypatch):
    write_manifest(tmp_path, {"stages": {"sft": {"status": "done"}}})
    before = (tmp_path / "manifest.json").read_bytes()

    def disk_full(descriptor):
        raise OSError("No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_manifest(tmp_path, {"stages": {"sft": {"status": "running"}}})
    assert (tmp_path / "manifest.json").read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["manifest.json"]  # no temporary file left


def test_a_report_is_written_atomically_too(tmp_path, monkeypatch):
    from affect_rl import report
    from affect_rl.evaluate import score_rows, summarise, task_metrics

    written = []
    real = files.atomic_write_text
    monkeypatch.setattr(report, "atomic_write_text", lambda path, text: written.append(path.name) or real(path, text))
    records = score_rows("emotion", "r1", ["<think>joy</think><answer>happy</answer>"], [{"emotions": ["happy"]}])
    summary = summarise({"base": records}, task_metrics("emotion", "r1", generated=False), n_bootstrap=5)
    summary.update(task="emotion", template="r1", data="demo:emotion")
    summary["checkpoints"]["base"].update(model="m", completions="completions_base.jsonl")
    report.write_report(summary, tmp_path)
    assert written == ["report.json", "report.md"]
    assert json.loads((tmp_path / "report.json").read_text())["n_rows"] == 1
    assert sorted(path.name for path in tmp_path.glob(".*")) == []  # no temporary file left


@pytest.mark.parametrize("replace", [False, True])
def test_a_staged_folder_appears_whole_or_not_at_all(tmp_path, replace):
    from affect_rl.files import staged_folder

    target = tmp_path / "models" / "built"
    with pytest.raises(RuntimeError), staged_folder(target) as staging:
        (staging / "weights").write_text("half")
        raise RuntimeError("killed mid-write")
    assert not target.exists() and list(target.parent.iterdir()) == []  # no staging folder left either
    with staged_folder(target) as staging:
        (staging / "weights").write_text("first")
    with staged_folder(target, replace=replace) as staging:  # another writer, finishing second
        (staging / "weights").write_text("second")
    assert (target / "weights").read_text() == ("second" if replace else "first")
    assert [path.name for path in target.parent.iterdir()] == ["built"]
