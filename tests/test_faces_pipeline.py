"""The faces recipe end to end at CPU-test scale: recipes/faces/pipeline.yaml with its own stage
recipes and rewards, on a handful of demo:faces rows, with a tiny VLM built in the test instead of
the 135M one. It checks the plumbing (every stage runs, the align stage trains the vision tower and
the later stages keep it, the report has the facial metrics with intervals), not what the demo learns."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from affect_rl import recipe_path
from affect_rl.config import read_yaml_mapping
from affect_rl.data import faces
from affect_rl.pipeline import run_pipeline_file

TINY = {"max_train_samples": 6, "per_device_train_batch_size": 3, "bf16": False, "num_sample_prompts": 1,
        "lora_r": 4, "lora_alpha": 8}  # fmt: skip
STAGE_OVERRIDES = {
    "align": {"max_steps": 2, "per_device_train_batch_size": 3},
    "sft": TINY | {"max_steps": 2},
    "grpo": TINY | {"max_steps": 1, "per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 8},
}
EVAL_OVERRIDES = {"max_test_samples": 4, "max_new_tokens": 8, "batch_size": 4, "n_bootstrap": 50}


def tiny_faces_pipeline(folder, vlm_dir):
    """recipes/faces/pipeline.yaml with every stage scaled down and the tiny VLM as the base model."""
    recipes = recipe_path("faces")
    pipeline = read_yaml_mapping(str(recipes / "pipeline.yaml"))
    for stage in pipeline["stages"]:
        if stage["stage"] == "eval":
            stage.update(EVAL_OVERRIDES, models={**stage["models"], "base": vlm_dir})
            continue
        stage["config"] = str(recipes / stage["config"])
        stage["overrides"] = {**(stage.get("overrides") or {}), **STAGE_OVERRIDES[stage["stage"]]}
        if stage["stage"] == "align":
            stage["overrides"]["model_name_or_path"] = vlm_dir
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return path


@pytest.mark.slow
def test_the_faces_pipeline_aligns_the_vision_tower_and_reports_facial_metrics(tiny_vlm_dir, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    monkeypatch.setenv("AFFECT_RL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(faces, "IDENTITIES", {"train": 2, "validation": 1, "test": 1})
    run_dir = tmp_path / "run"
    manifest = run_pipeline_file(str(tiny_faces_pipeline(tmp_path, tiny_vlm_dir)), output_dir=str(run_dir))

    assert {name: record["status"] for name, record in manifest["stages"].items()} == {
        "align": "done", "sft": "done", "grpo": "done", "eval": "done"}  # fmt: skip
    assert manifest["stages"]["sft"]["rows"]["heldout_rows"] == 6  # the test identity's six faces
    assert manifest["stages"]["align"]["rows"]["heldout_rows"] == 6
    aligned = load_file(run_dir / "align" / "model.safetensors")
    original = load_file(f"{tiny_vlm_dir}/model.safetensors")
    name = "model.vision_model.embeddings.patch_embedding.weight"
    assert not torch.equal(aligned[name], original[name])  # the align stage trained the vision tower
    text = "model.text_model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(aligned[text], original[text])  # and left the language model as it was
    adapter = load_file(run_dir / "sft" / "adapter_model.safetensors")
    assert not any("vision_model" in key or "connector" in key for key in adapter)  # SFT kept them frozen
    assert json.loads((run_dir / "sft" / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        run_dir / "align")  # fmt: skip
    state = json.loads((run_dir / "grpo" / "trainer_state.json").read_text())
    logged = {key for entry in state["log_history"] for key in entry}
    assert {f"rewards/{reward}/mean" for reward in ("au_f1", "accuracy", "format", "au_consistency")} <= logged

    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert list(report["checkpoints"]) == ["base", "sft", "grpo"] and report["n_rows"] == 4
    assert report["task"] == "facial" and report["template"] == "r1"
    for checkpoint in report["checkpoints"].values():
        metrics = checkpoint["metrics"]
        for metric in ("accuracy", "au_f1_micro", "au_f1_macro", "au_consistency", "format"):
            assert {"value", "ci_low", "ci_high"} <= set(metrics[metric])
    assert {"sft-base", "grpo-sft"} <= set(report["differences"])
    completions = [json.loads(line) for line in (run_dir / "eval" / "completions_grpo.jsonl").read_text().splitlines()]
    assert all(record["gold_aus"] and "cited_aus" in record for record in completions)
