"""Run a pipeline recipe: its stages in order, checkpoints handed along, one output tree per run.

A pipeline YAML lists stages; each ``sft`` / ``grpo`` stage names its stage recipe (relative
to the pipeline file) plus overrides, and may start from an earlier stage's model
(``model_from: sft``); an ``eval`` stage compares checkpoints, naming earlier stages or models.
Everything lands in ``<output_dir>/<stage name>/`` with ``manifest.json`` at the top: stages,
resolved configs, package versions, git commit, metrics. Re-running the same command skips
finished stages and resumes an interrupted one from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from affect_rl.config import build_stage_config, read_yaml_mapping
from affect_rl.errors import ConfigError
from affect_rl.scoring import build_reward_functions

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
DEMO_RECIPES = ("demo", "faces")  # the text demo (default) and the face-image demo
STAGE_KINDS = ("sft", "grpo", "eval")
TRACKED_PACKAGES = ("affect-rl", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "wandb")
# An eval stage takes every EvalArguments key (output_dir is the stage's folder).
EVAL_KEYS = {"models", "dataset", "dataset_mixture", "dataset_config", "format", "format_options", "encoding", "task",
             "template", "system_prompt", "label_set", "column_mapping", "ignore_media", "test_split", "split",
             "max_test_samples", "batch_size", "max_new_tokens", "n_bootstrap", "seed", "judge", "breakdown_column"}


def run_demo(output_dir: str = "runs/demo", recipe: str = "demo") -> dict:
    """The README's main command: a demo pipeline (``recipes/<recipe>/pipeline.yaml``) on the built-in
    models and data."""
    if recipe not in DEMO_RECIPES:
        raise ConfigError(f"Unknown demo recipe {recipe!r}; choose one of: {', '.join(DEMO_RECIPES)}.")
    path = RECIPES / recipe / "pipeline.yaml"
    if not path.is_file():
        raise ConfigError(f"The demo recipe {path} is missing: run the demo from a checkout of affect-rl.")
    return run_pipeline_file(str(path), output_dir=output_dir)


def run_pipeline_file(recipe_path: str, output_dir: str | None = None, skip: list[str] | None = None) -> dict:
    """Run every stage of ``recipe_path`` not in ``skip``; returns the manifest."""
    recipe = read_yaml_mapping(recipe_path)
    stages = validate_pipeline(recipe, recipe_path, skip or [])
    run_dir = Path(output_dir or recipe.get("output_dir") or f"runs/{Path(recipe_path).parent.name}")
    run_name = recipe.get("name", run_dir.name)
    recipe_dir = Path(recipe_path).parent
    # Every stage recipe and reward is checked before the first stage spends any time.
    for stage in stages:
        if stage["stage"] != "eval" and stage["name"] not in (skip or []):
            cfg = training_stage_config(stage, run_dir, recipe_dir, run_name)
            if cfg.stage == "grpo":
                build_reward_functions(cfg.recipe.rewards, cfg.source)
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(run_dir, recipe_path, run_name)
    os.environ.setdefault("WANDB_RUN_GROUP", manifest["run_name"])

    for stage in stages:
        record = manifest["stages"].setdefault(stage["name"], {"kind": stage["stage"], "status": "pending"})
        if stage["name"] in (skip or []):
            record["status"] = "skipped"
        elif record["status"] == "done":
            print(f"[pipeline] {stage['name']}: already done, skipping ({record['output_dir']})")
        else:
            run_stage(stage, record, run_dir, recipe_dir, manifest)
        write_manifest(run_dir, manifest)
    print(f"[pipeline] manifest: {run_dir / 'manifest.json'}")
    return manifest


def validate_pipeline(recipe: dict, source: str, skip: list[str]) -> list[dict]:
    """Check the stage list before anything runs (stage recipes are checked as they start)."""
    stages = recipe.get("stages")
    if not isinstance(stages, list) or not stages:
        raise ConfigError(f"{source}: `stages:` must be a non-empty list of stages ({', '.join(STAGE_KINDS)}).")
    unknown_top = set(recipe) - {"name", "output_dir", "stages"}
    if unknown_top:
        raise ConfigError(f"{source}: unknown top-level keys {sorted(unknown_top)}; accepted: name, output_dir, stages.")
    names = []
    for position, stage in enumerate(stages, start=1):
        where = f"{source}: stages[{position}]"
        if not isinstance(stage, dict) or stage.get("stage") not in STAGE_KINDS or "name" not in stage:
            raise ConfigError(f"{where} needs `name:` and `stage:` (one of {', '.join(STAGE_KINDS)}), got {stage!r}.")
        if stage["stage"] == "eval":
            extra = set(stage) - EVAL_KEYS - {"name", "stage"}
            if extra or "models" not in stage:
                raise ConfigError(f"{where} (eval) needs `models:` and accepts {sorted(EVAL_KEYS)}; "
                                  f"unknown: {sorted(extra)}.")
        elif "config" not in stage:
            raise ConfigError(f"{where} ({stage['stage']}) needs `config:`, the stage recipe file.")
        source_stage = stage.get("model_from")
        if source_stage is not None and source_stage not in names:
            raise ConfigError(f"{where}: model_from {source_stage!r} must name an earlier stage: {names}.")
        names.append(stage["name"])
    unknown_skips = set(skip) - set(names)
    if unknown_skips:
        raise ConfigError(f"--skip {sorted(unknown_skips)}: no such stage; stages are {names}.")
    return stages


def run_stage(stage: dict, record: dict, run_dir: Path, recipe_dir: Path, manifest: dict) -> None:
    """Run one stage, recording its resolved config, output folder, wall time and metrics."""
    output_dir = run_dir / stage["name"]
    record.update(status="running", output_dir=str(output_dir))
    write_manifest(run_dir, manifest)
    started = time.time()
    print(f"[pipeline] {stage['name']}: starting ({stage['stage']})")
    if stage["stage"] == "eval":
        record["metrics"] = run_eval_stage(stage, output_dir, manifest)
    else:
        record.update(run_training_stage(stage, run_dir, recipe_dir, manifest))
    record.update(status="done", wall_time_s=round(time.time() - started, 1))
    print(f"[pipeline] {stage['name']}: done in {record['wall_time_s']:.0f} s")


def training_stage_config(stage: dict, run_dir: Path, recipe_dir: Path, run_name: str):
    """The StageConfig of an sft/grpo stage: its recipe file, the pipeline's overrides, and the
    run's folders (its own output, and the model of the stage it starts from)."""
    config_path = recipe_dir / stage["config"]
    values = read_yaml_mapping(str(config_path))
    values.update(stage.get("overrides") or {})
    values.update(output_dir=str(run_dir / stage["name"]), resume_from_checkpoint="last",
                  run_name=f"{run_name}-{stage['name']}")
    if stage.get("model_from"):
        values["model_name_or_path"] = str(run_dir / stage["model_from"])
    return build_stage_config(stage["stage"], values, str(config_path))


def run_training_stage(stage: dict, run_dir: Path, recipe_dir: Path, manifest: dict) -> dict:
    from affect_rl import grpo, sft

    from affect_rl.data.heldout import recorded_rows

    cfg = training_stage_config(stage, run_dir, recipe_dir, manifest["run_name"])
    trainer = (sft if stage["stage"] == "sft" else grpo).train(cfg)
    return {"config": resolved_config(cfg), "metrics": final_train_metrics(trainer.state.log_history),
            "rows": recorded_rows(cfg.training.output_dir), "model_from": stage.get("model_from")}


def trained_ancestry(names, manifest: dict) -> list[str]:
    """The training stages behind ``names``: each stage and the stages its model came from."""
    found, pending = [], [name for name in names if name in manifest["stages"]]
    while pending:
        name = pending.pop()
        record = manifest["stages"][name]
        if name in found or record.get("kind") not in ("sft", "grpo"):
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

    models = {label: manifest["stages"][ref]["output_dir"] if ref in manifest["stages"] else ref
              for label, ref in stage["models"].items()}
    trained = trained_ancestry(stage["models"].values(), manifest)
    values = {key: value for key, value in stage.items() if key not in ("name", "stage", "models")}
    values.update(models=models, output_dir=str(output_dir))
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


def resolved_config(cfg) -> dict:
    """The stage's fully resolved configuration, JSON-ready."""
    return {
        "model": dataclasses.asdict(cfg.model),
        "data": dataclasses.asdict(cfg.data),
        "recipe": dataclasses.asdict(cfg.recipe),
        "training": json.loads(cfg.training.to_json_string()),
    }


def final_train_metrics(log_history: list[dict]) -> dict:
    """The last logged value of every metric (loss, rewards, runtime) from a trainer's history."""
    metrics: dict[str, Any] = {}
    for entry in log_history:
        metrics.update({k: v for k, v in entry.items() if isinstance(v, (int, float))})
    return metrics


def load_manifest(run_dir: Path, recipe_path: str, run_name: str) -> dict:
    """The run's manifest: the existing one when resuming, else a new one."""
    path = run_dir / "manifest.json"
    if path.is_file():
        return json.loads(path.read_text())
    return {
        "run_name": run_name,
        "recipe": str(Path(recipe_path).resolve()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "packages": {name: package_version(name) for name in TRACKED_PACKAGES},
        "stages": {},
    }


def write_manifest(run_dir: Path, manifest: dict) -> None:
    path = run_dir / "manifest.json"
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(manifest, indent=2, default=str))
    staging.replace(path)


def git_commit() -> str | None:
    """The commit of the affect-rl checkout, when it is one."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
