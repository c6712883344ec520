"""Run a pipeline recipe: its stages in order, checkpoints handed along, one output tree per run.

A pipeline YAML lists stages; each ``sft`` / ``grpo`` stage names its stage recipe (relative
to the pipeline file) plus overrides, and may start from an earlier stage's model
(``model_from: sft``); an ``eval`` stage compares checkpoints, naming earlier stages or models.
Everything lands in ``<output_dir>/<stage name>/`` with ``manifest.json`` at the top: stages,
resolved configs and their hashes, package versions, git commit, metrics.

Re-running the same command skips finished stages and resumes an interrupted one from its last
complete checkpoint. Before anything runs, every stage's config is hashed and compared with the
one recorded for its folder (``affect_rl.run_identity``): a stage whose recipe changed stops the
run with the changed keys. ``--restart STAGE`` moves that stage's folder aside
(``STAGE.old-TIMESTAMP``) and trains it again, together with the stages that use it;
``--force`` restarts every stage. ``--skip STAGE`` leaves a stage as it is (a finished one stays
"done"). A lock file keeps a second run out of the folder.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affect_rl import recipe_path
from affect_rl.config import build_stage_config
from affect_rl.config_values import read_yaml_mapping
from affect_rl.errors import ConfigError, DataError
from affect_rl.files import move_aside
from affect_rl.jsonl import read_jsonl
from affect_rl.manifest import load_manifest, write_manifest
from affect_rl.pipeline_recipe import (DATA_KINDS, TRAINER_KINDS, TRAINING_KINDS, check_skipped_dependencies,
                                       load_pipeline_recipe, split_dataset_from, stages_to_restart, validate_pipeline)
from affect_rl.run_identity import (check_identity, config_hash, mismatch, mismatch_message, read_identity,
                                    resolved_config, write_identity)
from affect_rl.run_lock import RunLock
from affect_rl.tracking import end_stage_run

DEMO_RECIPES = ("demo", "faces")  # the text demo (the default) and the face-image demo
DEMO_RECIPE = recipe_path("demo/pipeline.yaml")


@dataclass
class PlannedStage:
    """A stage as this run would start it: its resolved config (and its hash) and its folder."""

    spec: dict
    output_dir: Path
    config: dict
    hash: str
    stage_config: Any = None  # the StageConfig of sft/grpo/select/synthesize stages


def run_demo(output_dir: str = "runs/demo", recipe: str = "demo") -> dict:
    """The README's main command: a demo pipeline (``recipes/<recipe>/pipeline.yaml``) on the built-in
    models and data."""
    if recipe not in DEMO_RECIPES:
        raise ConfigError(f"Unknown demo recipe {recipe!r}; choose one of: {', '.join(DEMO_RECIPES)}.")
    path = recipe_path(f"{recipe}/pipeline.yaml")
    if not path.is_file():
        raise ConfigError(f"The demo recipe {path} is missing: reinstall affect-rl (pip install --force-reinstall "
                          "affect-rl) or run the demo from a checkout.")
    return run_pipeline_file(str(path), output_dir=output_dir)


def run(recipe: str, output_dir: str | None = None, **options) -> dict:
    """Run a pipeline recipe from Python (the same as ``affect-rl pipeline``); returns the manifest.
    ``options``: ``skip``, ``restart`` (lists of stage names) and ``force``."""
    return run_pipeline_file(str(recipe), output_dir=output_dir, **options)


def run_pipeline_file(recipe_path: str, output_dir: str | None = None, skip: list[str] | None = None,
                      restart: list[str] | None = None, force: bool = False) -> dict:
    """Run every stage of ``recipe_path`` not in ``skip``, restarting ``restart`` (every stage
    with ``force``) after moving their old folders aside; returns the manifest."""
    recipe = load_pipeline_recipe(recipe_path)
    skip, restart = list(skip or []), list(restart or [])
    stages = validate_pipeline(recipe, recipe_path, skip, restart)
    run_dir = Path(output_dir or recipe.get("output_dir") or f"runs/{Path(recipe_path).parent.name}")
    run_name = recipe.get("name", run_dir.name)
    # Everything is checked before the first stage spends any time: stage recipes, rewards,
    # skipped stages that others need, and the config each existing stage folder was made with.
    plans = {stage["name"]: plan_stage(stage, run_dir, run_name) for stage in stages if stage["name"] not in skip}
    manifest = load_manifest(run_dir, recipe_path, run_name)
    restarting = stages_to_restart(stages, skip, restart, force)
    check_skipped_dependencies(stages, skip, manifest)
    for name, plan in plans.items():
        if name not in restarting:
            check_stage_identity(plan, manifest["stages"].get(name))

    lock = RunLock(run_dir).acquire()
    try:
        os.environ.setdefault("WANDB_RUN_GROUP", manifest["run_name"])
        for name in restarting:
            set_aside(name, plans[name], manifest, run_dir)
        for stage in stages:
            run_or_skip(stage, plans.get(stage["name"]), manifest, run_dir, skip)
    finally:
        lock.release()
    print(f"[pipeline] manifest: {run_dir / 'manifest.json'}")
    return manifest


def plan_stage(stage: dict, run_dir: Path, run_name: str) -> PlannedStage:
    """A stage's resolved config and folder; stage recipes and rewards are fully checked here."""
    output_dir = run_dir / stage["name"]
    if stage["stage"] == "eval":
        config = {"stage": "eval", **{k: v for k, v in stage.items() if k not in ("name", "stage")}}
        return PlannedStage(stage, output_dir, config, config_hash(config, output_dir))
    cfg = training_stage_config(stage, run_dir, run_name)  # builds its rewards against the stage
    config = resolved_config(cfg)
    return PlannedStage(stage, output_dir, config, config_hash(config, output_dir), cfg)


def training_stage_config(stage: dict, run_dir: Path, run_name: str):
    """The StageConfig of a stage other than eval: its recipe file, the pipeline's
    overrides, and the run's folders (its own output, the model of the stage it starts from, the
    dataset a data stage wrote)."""
    config_path = Path(stage["config"])  # load_pipeline_recipe made it relative to the working folder
    values = read_yaml_mapping(str(config_path))
    values.update(stage.get("overrides") or {})
    values["output_dir"] = str(run_dir / stage["name"])
    if stage["stage"] in TRAINER_KINDS:
        values.update(resume_from_checkpoint="last", run_name=f"{run_name}-{stage['name']}")
        if values.get("push_to_hub"):  # a Hub repository named after the run, not <user>/<stage>
            values.setdefault("hub_model_id", values["run_name"])
    if stage.get("model_from"):
        values["model_name_or_path"] = str(run_dir / stage["model_from"])
    if stage.get("dataset_from"):
        values.update(dataset_from_values(stage["dataset_from"], run_dir))
    return build_stage_config(stage["stage"], values, str(config_path))


def check_training_rows(reference: str, run_dir: Path) -> None:
    """A DataError when the dataset an earlier data stage wrote has no training rows (a select band
    nothing fell into), before the stage that reads it loads a model."""
    stage, _ = split_dataset_from(reference)
    path = data_stage_output(reference, run_dir)
    rows, _ = read_jsonl(path)
    if not any(row.get("split") == "train" for row in rows):
        raise DataError(f"{reference} has no training rows: stage {stage!r} put none in {path.name} (see "
                        f"{run_dir / stage / 'summary.json'}); widen its band or lower its thresholds, or "
                        "train on another of its datasets.")


def data_stage_output(reference: str, run_dir: Path) -> Path:
    """The file of ``dataset_from: STAGE/DATASET``: ``<run>/<stage>/<dataset>.jsonl``."""
    stage, dataset = split_dataset_from(reference)
    return run_dir / stage / f"{dataset}.jsonl"


def dataset_from_values(reference: str, run_dir: Path) -> dict:
    """The data keys that point a stage at a dataset an earlier data stage wrote: its file, with
    canonical rows split train/test (so no format adapter, mapping or mixture applies)."""
    return {"dataset": str(data_stage_output(reference, run_dir)), "format": None, "format_options": None,
            "column_mapping": None, "dataset_mixture": None, "dataset_config": None,
            "train_split": "train", "test_split": "test"}  # fmt: skip


def check_stage_identity(plan: PlannedStage, record: dict | None) -> None:
    """Stop when the stage's folder (or its manifest record) was made with another config."""
    name = plan.spec["name"]
    advice = (f"pass --restart {name} to move it aside and run that stage again (--force restarts every stage), "
              "or choose another --output_dir")
    if read_identity(plan.output_dir) is not None:
        check_identity(plan.output_dir, plan.config, advice)
        return
    if record and record.get("status") not in (None, "pending", "skipped") and record.get("config"):
        recorded = {"config_hash": record.get("config_hash") or config_hash(record["config"], plan.output_dir),
                    "config": record["config"]}
        changes = mismatch(recorded, plan.config, plan.output_dir)
        if changes:
            raise ConfigError(mismatch_message(plan.output_dir, changes, advice))


def set_aside(name: str, plan: PlannedStage, manifest: dict, run_dir: Path) -> None:
    """Move a restarted stage's folder to ``NAME.old-TIMESTAMP`` and reset its manifest record."""
    previous = manifest["stages"].get(name, {})
    moved = list(previous.get("moved_aside", []))
    if plan.output_dir.exists():
        target = move_aside(plan.output_dir)
        moved.append(str(target))
        print(f"[pipeline] {name}: restarting; the old output is now {target}")
    manifest["stages"][name] = {"kind": plan.spec["stage"], "status": "pending", "moved_aside": moved}
    write_manifest(run_dir, manifest)


def run_or_skip(stage: dict, plan: PlannedStage | None, manifest: dict, run_dir: Path, skip: list[str]) -> None:
    name = stage["name"]
    record = manifest["stages"].setdefault(name, {"kind": stage["stage"], "status": "pending"})
    if name in skip:
        if record["status"] != "done":  # a finished stage stays done: its output is still there
            record["status"] = "skipped"
        print(f"[pipeline] {name}: skipped (--skip), status {record['status']}")
    elif record["status"] == "done":
        print(f"[pipeline] {name}: already done with this config, skipping ({record['output_dir']})")
    else:
        run_stage(plan, record, run_dir, manifest)
    write_manifest(run_dir, manifest)


def run_stage(plan: PlannedStage, record: dict, run_dir: Path, manifest: dict) -> None:
    """Run one stage, recording its resolved config and hash (first), wall time and metrics."""
    stage = plan.spec
    record.update(status="running", output_dir=str(plan.output_dir), config_hash=plan.hash, config=plan.config)
    record.pop("error", None)
    write_manifest(run_dir, manifest)
    started = time.time()
    print(f"[pipeline] {stage['name']}: starting ({stage['stage']})")
    try:
        if stage.get("dataset_from"):
            check_training_rows(stage["dataset_from"], run_dir)
        if stage["stage"] == "eval":
            write_identity(plan.output_dir, plan.config)
            record["metrics"] = run_eval_stage(stage, plan.output_dir, manifest)
        elif stage["stage"] in DATA_KINDS:
            write_identity(plan.output_dir, plan.config)
            record.update(run_data_stage(plan))
        elif stage["stage"] == "align":  # it locks its folder and records its identity itself, as sft and grpo do
            record.update(run_align_stage(plan))
        else:
            record.update(run_training_stage(plan))
    except KeyboardInterrupt:
        record["status"] = "interrupted"
        write_manifest(run_dir, manifest)
        raise
    except Exception as error:
        record.update(status="failed", error=" ".join(f"{type(error).__name__}: {error}".split())[:500])
        write_manifest(run_dir, manifest)
        raise
    record.update(status="done", wall_time_s=round(time.time() - started, 1))
    print(f"[pipeline] {stage['name']}: done in {record['wall_time_s']:.0f} s")


def run_training_stage(plan: PlannedStage) -> dict:
    from affect_rl import grpo, sft

    from affect_rl.data.heldout import recorded_rows

    trainer = (sft if plan.spec["stage"] == "sft" else grpo).train(plan.stage_config)
    end_stage_run()  # one W&B run per stage
    identity = read_identity(plan.output_dir) or {}
    return {"metrics": final_train_metrics(trainer.state.log_history),
            "resumed_from": identity.get("resumed_from", []),
            "rows": recorded_rows(plan.output_dir), "model_from": plan.spec.get("model_from")}


def run_align_stage(plan: PlannedStage) -> dict:
    """Run an align stage; the manifest records its summary and the rows it held out."""
    from affect_rl import align
    from affect_rl.data.heldout import recorded_rows

    summary = align.run(plan.stage_config)
    return {"metrics": {key: summary[key] for key in ("final_loss", "final_accuracy")},
            "rows": recorded_rows(plan.output_dir), "model_from": plan.spec.get("model_from")}


def run_data_stage(plan: PlannedStage) -> dict:
    """Run a select or synthesize stage; the manifest records the datasets it wrote and its summary."""
    from affect_rl.cli import run_loaded_stage

    summary = run_loaded_stage(plan.stage_config)
    counts = {key: value for key, value in summary.items() if key not in ("datasets", "plot")}
    return {"datasets": summary["datasets"], "summary": counts, "model_from": plan.spec.get("model_from")}


def trained_ancestry(names, manifest: dict) -> list[str]:
    """The training stages behind ``names``: each stage and the stages its model came from."""
    found, pending = [], [name for name in names if name in manifest["stages"]]
    while pending:
        name = pending.pop()
        record = manifest["stages"][name]
        if name in found or record.get("kind") not in TRAINING_KINDS:
            continue
        found.append(name)
        if record.get("model_from"):
            pending.append(record["model_from"])
    return found


def run_eval_stage(stage: dict, output_dir: Path, manifest: dict) -> dict:
    """Evaluate the stage's models on the rows their training stages held out (or on the stage's
    own dataset), refusing any row one of those stages trained on."""
    from affect_rl.data import load_eval_rows
    from affect_rl.data.heldout import trained_on
    from affect_rl.evaluate import build_eval_arguments, evaluate_checkpoints, print_report

    models = {label: str(output_dir.parent / ref) if ref in manifest["stages"] else ref
              for label, ref in stage["models"].items()}
    trained = trained_ancestry(stage["models"].values(), manifest)
    values = {key: value for key, value in stage.items() if key not in ("name", "stage", "models", "dataset_from")}
    values.update(models=models, output_dir=str(output_dir))
    if stage.get("dataset_from"):
        values.update(dataset_from_values(stage["dataset_from"], output_dir.parent))
    if "dataset" not in values and "dataset_mixture" not in values:
        if not trained:
            raise ConfigError(f"eval stage {stage['name']!r} names no training stage and no dataset; set dataset:")
        latest = manifest["stages"][max(trained, key=list(manifest["stages"]).index)]
        if not latest.get("rows"):
            raise ConfigError(f"stage {trained[0]!r} recorded no held-out rows; re-run it, or set the eval's dataset:")
        values["dataset"] = latest["rows"]["heldout"]
        for key in ("task", "template", "system_prompt", "label_set"):
            values.setdefault(key, latest["config"]["data"][key])
    eval_args = build_eval_arguments(values, f"eval stage {stage['name']!r}")
    rows = load_eval_rows(eval_args, eval_args.split)
    for name in trained:
        overlap = trained_on(rows, manifest["stages"][name]["output_dir"])
        if overlap:
            raise ConfigError(
                f"eval stage {stage['name']!r} would score {len(overlap)} row(s) that stage {name!r} trained on "
                f"(first: row {overlap[0] + 1}); evaluate on held-out rows (leave dataset unset to use them)"
            )
    training_logs = {name: str(Path(manifest["stages"][name]["output_dir"]) / "trainer_state.json")
                     for name in reversed(trained)}
    report = evaluate_checkpoints(models, eval_args, rows=rows, training_logs=training_logs)
    print_report(report)
    return report.get("summary", {})


def final_train_metrics(log_history: list[dict]) -> dict:
    """The last logged value of every metric (loss, rewards, runtime) from a trainer's history."""
    metrics: dict[str, Any] = {}
    for entry in log_history:
        metrics.update({k: v for k, v in entry.items() if isinstance(v, (int, float))})
    return metrics


