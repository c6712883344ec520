"""The pipeline end to end on a tiny model: SFT -> GRPO -> eval, manifest, report, resume."""

import json
import socket
import subprocess
from pathlib import Path

import pytest
import yaml
from pipeline_fixtures import ROWS, finish_on_disk, tree_bytes, write_pipeline

from affect_rl.errors import ConfigError
from affect_rl.pipeline import run_eval_stage, run_pipeline_file, write_manifest

COMMON = {"dataset": None, "task": "emotion", "template": "r1", "report_to": "none", "bf16": False,
          "num_sample_prompts": 0, "logging_steps": 1, "save_strategy": "no", "seed": 0}


def write_recipes(folder, model_dir):
    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    common = dict(COMMON, dataset=str(data), model_name_or_path=model_dir)
    sft = dict(common, max_steps=2, per_device_train_batch_size=2, learning_rate=1e-3)
    grpo = dict(common, max_steps=1, per_device_train_batch_size=4, num_generations=2, max_completion_length=8,
                rewards=[{"name": "emotion_wheel", "weight": 1.0}, {"name": "format", "weight": 0.2}])
    pipeline = {
        "name": "tiny",
        "stages": [
            {"name": "sft", "stage": "sft", "config": "sft.yaml"},
            {"name": "grpo", "stage": "grpo", "config": "grpo.yaml", "model_from": "sft"},
            {"name": "eval", "stage": "eval", "models": {"base": model_dir, "sft": "sft", "grpo": "grpo"},
             "max_new_tokens": 8, "batch_size": 4, "n_bootstrap": 50},
        ],
    }
    for name, content in (("sft.yaml", sft), ("grpo.yaml", grpo), ("pipeline.yaml", pipeline)):
        (folder / name).write_text(yaml.safe_dump(content, sort_keys=False))
    return folder / "pipeline.yaml"


def test_pipeline_runs_every_stage_writes_manifest_and_report_then_skips_on_rerun(tiny_model_dir, tmp_path):
    recipe = write_recipes(tmp_path, tiny_model_dir)
    run_dir = tmp_path / "run"
    manifest = run_pipeline_file(str(recipe), output_dir=str(run_dir))

    assert [record["status"] for record in manifest["stages"].values()] == ["done", "done", "done"]
    on_disk = json.loads((run_dir / "manifest.json").read_text())
    assert on_disk["stages"]["grpo"]["config"]["model"]["model_name_or_path"] == str(run_dir / "sft")
    assert on_disk["stages"]["sft"]["config"]["training"]["max_steps"] == 2
    assert on_disk["packages"]["trl"] and "train_loss" in on_disk["stages"]["sft"]["metrics"]
    for stage in ("sft", "grpo", "eval"):  # the run identity, in the manifest and in the stage folder
        identity = json.loads((run_dir / stage / "affect_rl_config.json").read_text())
        assert identity["config_hash"] == on_disk["stages"][stage]["config_hash"]
        assert len(identity["config_hash"]) == 64 and not (run_dir / stage / ".affect_rl.lock").exists()
    assert not (run_dir / ".affect_rl.lock").exists()

    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert list(report["checkpoints"]) == ["base", "sft", "grpo"]
    # Without a dataset the eval scores exactly the rows the training stages held out: the 3 test rows.
    assert on_disk["stages"]["sft"]["rows"] == {"heldout": str(run_dir / "sft" / "heldout.jsonl"),
                                                "heldout_rows": 3, "train_rows": 4}
    assert report["n_rows"] == 3 and report["task"] == "emotion"
    leak = {"name": "leak", "stage": "eval", "models": {"grpo": "grpo"}, "dataset": str(tmp_path / "rows.jsonl"),
            "task": "emotion", "split": "train", "n_bootstrap": 10}
    with pytest.raises(ConfigError, match=r"would score 4 row\(s\) that stage 'grpo' trained on"):
        run_eval_stage(leak, tmp_path / "leak", on_disk)
    assert (run_dir / "eval" / "report.md").is_file()
    assert list((run_dir / "eval").glob("*.png"))

    again = run_pipeline_file(str(recipe), output_dir=str(run_dir))
    assert again["stages"]["sft"]["wall_time_s"] == manifest["stages"]["sft"]["wall_time_s"]


@pytest.mark.parametrize("stages, message", [
    ([{"name": "a", "stage": "dpo", "config": "x.yaml"}], "one of align, sft, grpo, select, synthesize, eval"),
    ([{"name": "a", "stage": "sft"}], "needs `config:`"),
    ([{"name": "g", "stage": "grpo", "config": "x.yaml", "model_from": "sft"}], "must name an earlier align, sft or grpo"),
    ([{"name": "e", "stage": "eval", "models": {"a": "b"}, "max_new_token": 3}],
     "unknown keys \\['max_new_token'\\] \\(did you mean 'max_new_tokens'\\?\\)"),
    ([], "non-empty list"),
])
def test_bad_pipelines_fail_before_anything_runs(tmp_path, stages, message):
    recipe = tmp_path / "pipeline.yaml"
    recipe.write_text(yaml.safe_dump({"stages": stages}))
    with pytest.raises(ConfigError, match=message):
        run_pipeline_file(str(recipe), output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run" / "manifest.json").exists()


@pytest.mark.parametrize("stages, message", [
    ([{"name": "sft", "stage": "sft", "config": "sft.yaml", "overides": {"max_steps": 1}}],
     r"stages\[1\] \(sft\): unknown keys \['overides'\] \(did you mean 'overrides'\?\)"),
    ([{"name": "sft", "stage": "sft", "config": "sft.yaml"}, {"name": "sft", "stage": "sft", "config": "sft.yaml"}],
     r"stages\[2\]: two stages are named 'sft'"),
    ([{"name": "../x", "stage": "sft", "config": "sft.yaml"}], r"stage name '\.\./x' becomes a folder name"),
    ([{"name": "a/b", "stage": "sft", "config": "sft.yaml"}], r"stage name 'a/b' becomes a folder name"),
    ([{"name": "sft", "stage": "sft", "config": "sft.yaml", "overrides": [1]}], r"`overrides:` must be a mapping"),
    ([{"name": "e", "stage": "eval", "models": {"a": "m"}},
      {"name": "g", "stage": "grpo", "config": "grpo.yaml", "model_from": "e"}], r"'e' must name an earlier align, sft or grpo"),
    ([{"name": "e", "stage": "eval", "models": {"late": "sft"}}, {"name": "sft", "stage": "sft", "config": "sft.yaml"}],
     r"stages\[1\]: 'sft' must name an earlier align, sft or grpo stage: \[\]"),
])
def test_pipeline_keys_and_stage_names_are_checked_at_every_level(tmp_path, stages, message):
    recipe = write_pipeline(tmp_path, stages=stages)
    with pytest.raises(ConfigError, match=message):
        run_pipeline_file(str(recipe), output_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("flags, message", [
    ({"restart": ["nosuch"]}, r"--restart \['nosuch'\]: no such stage; stages are \['sft', 'grpo', 'eval'\]"),
    ({"skip": ["sft"], "restart": ["sft"]}, r"--skip and --restart both name \['sft'\]"),
    ({"skip": ["sft"]}, r"Stage 'grpo' uses stage 'sft', which is skipped \(--skip sft\) but not done \(never run\)"),
    ({"skip": ["sft", "grpo"]}, r"Stage 'eval' uses stage 'sft', which is skipped"),
])
def test_bad_stage_flags_fail_before_anything_runs(tmp_path, flags, message):
    recipe = write_pipeline(tmp_path)
    with pytest.raises(ConfigError, match=message):
        run_pipeline_file(str(recipe), output_dir=str(tmp_path / "run"), **flags)
    assert not (tmp_path / "run").exists()


def test_changed_recipe_stops_the_rerun_and_lists_the_changed_keys(tmp_path):
    recipe = write_pipeline(tmp_path)
    run_dir = tmp_path / "run"
    finish_on_disk(recipe, run_dir)
    before = tree_bytes(run_dir)
    write_pipeline(tmp_path, sft={"learning_rate": 2e-3, "per_device_train_batch_size": 1})
    with pytest.raises(ConfigError) as raised:
        run_pipeline_file(str(recipe), output_dir=str(run_dir))
    message = str(raised.value)
    assert f"{run_dir / 'sft'} holds a run with a different config" in message
    assert "training.learning_rate: 0.001 -> 0.002" in message
    assert "training.per_device_train_batch_size: 2 -> 1" in message
    assert "pass --restart sft" in message and "--force" in message and "\n" not in message
    assert tree_bytes(run_dir) == before


def test_a_partly_run_stage_is_checked_from_its_manifest_record_too(tmp_path):
    recipe = write_pipeline(tmp_path)
    run_dir = tmp_path / "run"
    manifest = finish_on_disk(recipe, run_dir, ["sft"])
    manifest["stages"]["sft"]["status"] = "running"
    write_manifest(run_dir, manifest)
    (run_dir / "sft" / "affect_rl_config.json").unlink()  # e.g. a manifest written by the pipeline only
    write_pipeline(tmp_path, sft={"max_steps": 3})
    with pytest.raises(ConfigError, match=r"training.max_steps: 2 -> 3"):
        run_pipeline_file(str(recipe), output_dir=str(run_dir))


def test_keys_that_do_not_change_training_do_not_trip_the_check(tmp_path, monkeypatch):
    recipe = write_pipeline(tmp_path)
    run_dir = tmp_path / "run"
    finish_on_disk(recipe, run_dir)
    # Logging, saving and tracking settings may change; the run folder may be named another way.
    write_pipeline(tmp_path, sft={"logging_steps": 5, "save_strategy": "steps", "save_steps": 1,
                                  "report_to": "wandb", "num_sample_prompts": 3})
    monkeypatch.chdir(tmp_path)
    manifest = run_pipeline_file(str(recipe), output_dir="run")
    assert [record["status"] for record in manifest["stages"].values()] == ["done", "done", "done"]


def test_skip_leaves_a_finished_stage_done_and_marks_an_unrun_one_skipped(tmp_path):
    recipe = write_pipeline(tmp_path, stages=[
        {"name": "sft", "stage": "sft", "config": "sft.yaml"},
        {"name": "sft2", "stage": "sft", "config": "sft.yaml"},
        {"name": "eval", "stage": "eval", "models": {"sft": "sft"}},
    ])
    run_dir = tmp_path / "run"
    finish_on_disk(recipe, run_dir, ["sft", "eval"])
    manifest = run_pipeline_file(str(recipe), output_dir=str(run_dir), skip=["sft", "sft2"])
    statuses = {name: record["status"] for name, record in manifest["stages"].items()}
    assert statuses == {"sft": "done", "sft2": "skipped", "eval": "done"}
    on_disk = json.loads((run_dir / "manifest.json").read_text())
    assert on_disk["stages"]["sft"]["status"] == "done"


def test_restart_moves_the_stage_and_its_users_aside_and_never_deletes(tmp_path):
    recipe = write_pipeline(tmp_path)
    run_dir = tmp_path / "run"
    finish_on_disk(recipe, run_dir)
    before = {name: tree_bytes(run_dir / name) for name in ("sft", "grpo", "eval")}
    (tmp_path / "rows.jsonl").unlink()  # the restarted stage then fails while loading its data
    with pytest.raises(Exception, match="rows.jsonl"):
        run_pipeline_file(str(recipe), output_dir=str(run_dir), restart=["sft"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for name in ("sft", "grpo", "eval"):  # grpo starts from sft and eval reads both: they restart too
        [moved] = manifest["stages"][name]["moved_aside"]
        assert Path(moved).name.startswith(f"{name}.old-")
        assert tree_bytes(Path(moved)) == before[name]
    assert manifest["stages"]["sft"]["status"] == "failed" and "rows.jsonl" in manifest["stages"]["sft"]["error"]
    assert manifest["stages"]["grpo"]["status"] == "pending"


def test_force_restarts_every_stage(tmp_path):
    recipe = write_pipeline(tmp_path, stages=[{"name": "sft", "stage": "sft", "config": "sft.yaml"},
                                              {"name": "other", "stage": "sft", "config": "sft.yaml"}])
    run_dir = tmp_path / "run"
    finish_on_disk(recipe, run_dir)
    (tmp_path / "rows.jsonl").unlink()
    with pytest.raises(Exception, match="rows.jsonl"):
        run_pipeline_file(str(recipe), output_dir=str(run_dir), force=True)
    assert sorted(path.name.split(".old-")[0] for path in run_dir.glob("*.old-*")) == ["other", "sft"]


def test_a_second_run_on_the_same_folder_is_refused_and_a_dead_holder_is_taken_over(tmp_path, caplog):
    recipe = write_pipeline(tmp_path)
    run_dir = tmp_path / "run"
    finish_on_disk(recipe, run_dir)
    lock = run_dir / ".affect_rl.lock"
    lock.write_text(json.dumps({"pid": 1, "host": socket.gethostname(), "since": "today"}))  # pid 1 lives
    with pytest.raises(ConfigError, match=rf"{run_dir} is in use by another affect-rl run \(pid 1 on "):
        run_pipeline_file(str(recipe), output_dir=str(run_dir))
    finished = subprocess.run(["true"])  # noqa: S607 -- a pid that has certainly exited
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert finished.returncode == 0
    lock.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "since": "yesterday"}))
    manifest = run_pipeline_file(str(recipe), output_dir=str(run_dir))
    assert manifest["stages"]["sft"]["status"] == "done"
    assert f"stale lock {lock} of pid {dead.pid}" in caplog.text
    assert not lock.exists()  # released at the end of the run


@pytest.mark.slow
def test_an_interrupted_stage_resumes_from_its_last_complete_checkpoint(tiny_model_dir, tmp_path, caplog):
    recipe = write_pipeline(tmp_path, model=tiny_model_dir, sft={"max_steps": 3, "save_strategy": "steps",
                                                                 "save_steps": 1},
                            stages=[{"name": "sft", "stage": "sft", "config": "sft.yaml"}])
    run_dir, sft = tmp_path / "run", tmp_path / "run" / "sft"
    run_pipeline_file(str(recipe), output_dir=str(run_dir))
    # As if the job died while writing checkpoint-3: no trainer_state.json there, no final model.
    (sft / "checkpoint-3" / "trainer_state.json").unlink()
    for name in ("model.safetensors", "config.json", "trainer_state.json"):
        (sft / name).unlink()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["stages"]["sft"]["status"] = "running"
    write_manifest(run_dir, manifest)

    manifest = run_pipeline_file(str(recipe), output_dir=str(run_dir))
    assert manifest["stages"]["sft"]["status"] == "done"
    assert manifest["stages"]["sft"]["resumed_from"] == [str(sft / "checkpoint-2")]
    assert f"Skipping {sft / 'checkpoint-3'}: incomplete checkpoint, no trainer_state.json" in caplog.text
    assert json.loads((sft / "trainer_state.json").read_text())["global_step"] == 3
    assert (sft / "model.safetensors").is_file() and (sft / "checkpoint-3" / "trainer_state.json").is_file()


def test_a_pipeline_extends_another_and_overrides_its_stages(tmp_path):
    from affect_rl.pipeline_recipe import load_pipeline_recipe

    gpu = tmp_path / "gpu"
    gpu.mkdir()
    (gpu / "sft.yaml").write_text("learning_rate: 1.0e-5\n")
    (gpu / "pipeline.yaml").write_text(yaml.safe_dump({"name": "big", "stages": [
        {"name": "sft", "stage": "sft", "config": "sft.yaml", "overrides": {"max_steps": 100}},
        {"name": "grpo", "stage": "grpo", "config": "sft.yaml", "model_from": "sft"},
        {"name": "eval", "stage": "eval", "models": {"base": "big-model", "sft": "sft"}},
    ]}))  # fmt: skip
    (gpu / "cpu.yaml").write_text(yaml.safe_dump({"extends": "pipeline.yaml", "name": "small", "overrides": {
        "all": {"model_name_or_path": "tiny", "max_steps": 2},
        "grpo": {"num_generations": 2},
        "eval": {"models": {"base": "tiny", "sft": "sft"}, "n_bootstrap": 10},
    }}))  # fmt: skip
    recipe = load_pipeline_recipe(str(gpu / "cpu.yaml"))
    sft, grpo, evaluation = recipe["stages"]
    assert recipe["name"] == "small" and sft["config"] == str(gpu / "sft.yaml")
    assert sft["overrides"] == {"max_steps": 2, "model_name_or_path": "tiny"}
    assert grpo["overrides"] == {"model_name_or_path": "tiny", "max_steps": 2, "num_generations": 2}
    assert evaluation["models"] == {"base": "tiny", "sft": "sft"} and evaluation["n_bootstrap"] == 10
    (gpu / "typo.yaml").write_text(yaml.safe_dump({"extends": "pipeline.yaml", "overrides": {"sfft": {"max_steps": 1}}}))
    with pytest.raises(ConfigError, match=r"overrides names \['sfft'\], which are not stages"):
        load_pipeline_recipe(str(gpu / "typo.yaml"))
    (gpu / "loop.yaml").write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="`extends` loops back"):
        load_pipeline_recipe(str(gpu / "loop.yaml"))


def test_eval_stage_takes_every_setting_of_the_eval_itself():
    # pipeline_recipe lists the keys by hand (importing affect_rl.evaluate would slow every --help).
    import dataclasses

    from affect_rl.data.arguments import DataArguments
    from affect_rl.evaluate import EVAL_FIELDS
    from affect_rl.pipeline_recipe import EVAL_KEYS

    pipeline_only = {"name", "stage", "models", "dataset_from"}  # output_dir is the stage's folder
    eval_own = set(EVAL_FIELDS) - {f.name for f in dataclasses.fields(DataArguments)} - {"models", "output_dir"}
    assert "dtype" in eval_own and eval_own <= EVAL_KEYS
    assert EVAL_KEYS - pipeline_only <= set(EVAL_FIELDS)
