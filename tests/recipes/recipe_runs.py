"""Helpers of the recipe tests: a tiny variant of a recipe's CPU pipeline, run it, read what it wrote.

``tiny_recipe(folder, system, model, ...)`` writes a YAML that ``extends`` ``recipes/<system>/cpu.yaml``,
overriding the model (the tiny one) and whatever the test shrinks (steps, rows, generation lengths);
``run_recipe`` runs it (from the repository root, fixture ``in_repo``: the CPU recipes name their rows
relative to it) and returns the manifest and the eval report.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def tiny_recipe(folder: Path, system: str, model: str, overrides: dict | None = None,
                eval_models: dict | None = None, base: str = "cpu.yaml") -> Path:
    """A pipeline YAML in ``folder`` that extends ``recipes/<system>/<base>``: every stage on ``model``
    (no sample generations printed), the eval on ``eval_models`` (label -> stage or model; default the
    model as ``base``), plus ``overrides`` (stage or ``all`` -> keys)."""
    overrides = dict(overrides or {})
    overrides["all"] = {"model_name_or_path": model, "num_sample_prompts": 0, **overrides.get("all", {})}
    overrides["eval"] = {"models": eval_models or {"base": model}, "n_bootstrap": 20, **overrides.get("eval", {})}
    recipe = folder / f"{system}_tiny.yaml"
    recipe.write_text(yaml.safe_dump({"extends": str(REPO / "recipes" / system / base), "name": f"{system}_tiny",
                                      "overrides": overrides}, sort_keys=False))  # fmt: skip
    return recipe


def run_recipe(recipe: Path, run_dir: Path) -> tuple[dict, dict]:
    """Run a pipeline recipe; (its manifest, the report of its last eval stage)."""
    from affect_rl.pipeline import run_pipeline_file

    manifest = run_pipeline_file(str(recipe), output_dir=str(run_dir))
    evals = [name for name, record in manifest["stages"].items() if record["kind"] == "eval"]
    return manifest, json.loads((run_dir / evals[-1] / "report.json").read_text())


def assert_all_done(manifest: dict, stages: list[str]) -> None:
    assert {name: record["status"] for name, record in manifest["stages"].items()} == dict.fromkeys(stages, "done")


def stage_prompts(recipe: Path, stage_name: str) -> list[list[dict]]:
    """The rendered training prompts of one stage of a pipeline recipe (as that stage will see them)."""
    from affect_rl.data_stage import load_stage_rows
    from affect_rl.pipeline import load_pipeline_recipe, training_stage_config

    pipeline = load_pipeline_recipe(str(recipe))
    (stage,) = [stage for stage in pipeline["stages"] if stage["name"] == stage_name]
    return load_stage_rows(training_stage_config(stage, Path("/nonexistent-run"), "prompts")).prompts


def plan_gpu_pipeline(system: str, pipeline: str = "pipeline.yaml") -> dict:
    """Every stage of ``recipes/<system>/<pipeline>`` planned as a run would (stage recipes built with
    ``build_stage_config``, rewards and options checked against their stage, template and task fit),
    without loading a model or data; stage name -> ``PlannedStage``. Each stage recipe also loads alone."""
    from affect_rl.config import load_stage_config
    from affect_rl.pipeline import load_pipeline_recipe, plan_stage, validate_pipeline

    path = REPO / "recipes" / system / pipeline
    recipe = load_pipeline_recipe(str(path))
    stages = validate_pipeline(recipe, str(path), [], [])
    plans = {stage["name"]: plan_stage(stage, Path("/nonexistent-run"), recipe["name"]) for stage in stages}
    for stage in stages:
        if stage["stage"] != "eval":
            load_stage_config(stage["stage"], stage["config"])
    return plans
