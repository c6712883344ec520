"""Pipeline runs laid out on disk without training, for tests of what happens before a stage runs.

``write_pipeline`` writes a small sft -> grpo -> eval pipeline; ``finish_on_disk`` makes stages
look finished exactly as the pipeline records them (identity file from the real config hash,
manifest record "done", a weights file), so re-run checks can be tested in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from affect_rl.config import read_yaml_mapping
from affect_rl.pipeline import load_manifest, plan_stage, validate_pipeline, write_manifest
from affect_rl.run_identity import write_identity

ROWS = [
    {"text": "My sister flew home after two years abroad.", "emotions": ["happy", "excited"], "split": "train"},
    {"text": "The landlord kept our deposit without a reason.", "emotions": ["angry"], "split": "train"},
    {"text": "I forgot my best friend's birthday.", "emotions": ["guilty"], "split": "train"},
    {"text": "The scan results came back clear.", "emotions": ["calm"], "split": "train"},
    {"text": "Nobody came to my art show opening.", "emotions": ["sad", "lonely"], "split": "test"},
    {"text": "A stranger returned my lost wallet.", "emotions": ["grateful"], "split": "test"},
    {"text": "My flight was cancelled for the third time.", "emotions": ["frustrated"], "split": "test"},
]
COMMON = {"task": "emotion", "template": "r1", "report_to": "none", "bf16": False,
          "num_sample_prompts": 0, "logging_steps": 1, "save_strategy": "no", "seed": 0}


def write_pipeline(folder: Path, model: str = "not-loaded-in-these-tests", sft: dict | None = None,
                   grpo: dict | None = None, stages: list[dict] | None = None) -> Path:
    """rows.jsonl, sft.yaml, grpo.yaml and pipeline.yaml in ``folder``; returns the pipeline path."""
    data = folder / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    common = dict(COMMON, dataset=str(data), model_name_or_path=model)
    sft_recipe = {**common, "max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1e-3, **(sft or {})}
    grpo_recipe = {**common, "max_steps": 1, "per_device_train_batch_size": 4, "num_generations": 2,
                   "max_completion_length": 8, "rewards": [{"name": "emotion_wheel", "weight": 1.0},
                                                           {"name": "format", "weight": 0.2}], **(grpo or {})}
    pipeline = {"name": "tiny", "stages": stages or [
        {"name": "sft", "stage": "sft", "config": "sft.yaml"},
        {"name": "grpo", "stage": "grpo", "config": "grpo.yaml", "model_from": "sft"},
        {"name": "eval", "stage": "eval", "models": {"base": model, "sft": "sft", "grpo": "grpo"},
         "dataset": str(data), "task": "emotion", "template": "r1", "max_new_tokens": 8, "batch_size": 4,
         "n_bootstrap": 50},
    ]}
    for name, content in (("sft.yaml", sft_recipe), ("grpo.yaml", grpo_recipe), ("pipeline.yaml", pipeline)):
        (folder / name).write_text(yaml.safe_dump(content, sort_keys=False))
    return folder / "pipeline.yaml"


def finish_on_disk(recipe: Path, run_dir: Path, names: list[str] | None = None) -> dict:
    """Mark ``names`` (default: every stage) finished the way ``run_pipeline_file`` leaves them."""
    pipeline = read_yaml_mapping(str(recipe))
    stages = validate_pipeline(pipeline, str(recipe), [], [])
    manifest = load_manifest(run_dir, str(recipe), pipeline["name"])
    for stage in stages:
        if names is not None and stage["name"] not in names:
            continue
        plan = plan_stage(stage, run_dir, recipe.parent, pipeline["name"])
        write_identity(plan.output_dir, plan.config)
        (plan.output_dir / "model.safetensors").write_bytes(b"finished weights of " + stage["name"].encode())
        manifest["stages"][stage["name"]] = {"kind": stage["stage"], "status": "done", "output_dir": str(plan.output_dir),
                                             "config_hash": plan.hash, "config": plan.config, "wall_time_s": 1.0}
    write_manifest(run_dir, manifest)
    return manifest


def tree_bytes(folder: Path) -> dict[str, bytes]:
    """Relative path -> content of every file under ``folder`` (to prove nothing changed)."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}
