"""`affect-rl export`: LoRA merge, standalone checkpoint, model card with the run's eval table, Hub push;
the launchers serve merged weights; pipeline Hub repositories are named after the run."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from affect_rl import cli, export
from affect_rl.errors import EnvironmentProblem

ROOT = Path(__file__).resolve().parents[1]
ROWS = [
    {"text": "My sister flew home after two years abroad.", "emotions": ["happy", "excited"], "split": "train"},
    {"text": "The landlord kept our deposit without a reason.", "emotions": ["angry"], "split": "train"},
    {"text": "I forgot my best friend's birthday.", "emotions": ["guilty"], "split": "train"},
    {"text": "The scan results came back clear.", "emotions": ["calm"], "split": "train"},
    {"text": "Nobody came to my art show opening.", "emotions": ["sad", "lonely"], "split": "test"},
    {"text": "A stranger returned my lost wallet.", "emotions": ["grateful"], "split": "test"},
]


def logits(model, tokenizer):
    import torch

    inputs = tokenizer("I feel calm and happy today.", return_tensors="pt")
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.slow
def test_export_merges_a_lora_pipeline_stage_into_a_standalone_checkpoint_with_its_model_card(tiny_model_dir,
                                                                                               tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from affect_rl.pipeline import run_pipeline_file

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    sft = {"model_name_or_path": tiny_model_dir, "dataset": str(data), "task": "emotion", "template": "r1",
           "use_peft": True, "lora_r": 4, "lora_alpha": 8, "lora_target_modules": ["q_proj", "v_proj"],
           "max_steps": 3, "per_device_train_batch_size": 2, "learning_rate": 0.05, "report_to": "none",
           "bf16": False, "num_sample_prompts": 0, "save_strategy": "no"}
    pipeline = {"name": "lora", "stages": [
        {"name": "sft", "stage": "sft", "config": "sft.yaml"},
        {"name": "eval", "stage": "eval", "models": {"base": tiny_model_dir, "sft": "sft"}, "dataset": str(data),
         "task": "emotion", "template": "r1", "max_new_tokens": 4, "batch_size": 2, "n_bootstrap": 20}]}
    (tmp_path / "sft.yaml").write_text(yaml.safe_dump(sft))
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    run_dir = tmp_path / "run"
    run_pipeline_file(str(tmp_path / "pipeline.yaml"), output_dir=str(run_dir))
    assert (run_dir / "sft" / "adapter_config.json").is_file()

    assert cli.main(["export", "--model", str(run_dir / "sft"), "--merge"]) == 0
    merged = run_dir / "sft-merged"
    files = {path.name for path in merged.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "chat_template.jinja", "README.md", "export.json"} <= files
    assert "adapter_config.json" not in files

    tokenizer = AutoTokenizer.from_pretrained(merged)
    standalone = AutoModelForCausalLM.from_pretrained(merged)  # no peft involved
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    base_logits = logits(base, tokenizer)
    adapted = PeftModel.from_pretrained(base, run_dir / "sft")
    assert torch.allclose(logits(standalone, tokenizer), logits(adapted, tokenizer), atol=1e-4)
    assert not torch.allclose(logits(standalone, tokenizer), base_logits, atol=1e-3)  # the adapter was trained
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)

    card = (merged / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: transformers" in card and "- affect-rl" in card
    assert "stage `sft` (sft) of the affect-rl run `lora`" in card and "merged into its base model" in card
    report = json.loads((run_dir / "eval" / "report.json").read_text())
    assert "This model is the row `sft`." in card
    for label in ("base", "sft"):  # the eval table with its intervals, as report.md writes it
        value = report["checkpoints"][label]["metrics"]["format"]
        assert re.search(rf"\| {label} \|.*{value['value']:.2f} \[{value['ci_low']:.2f}, {value['ci_high']:.2f}\]",
                         card), label
    assert f"| dataset | `\"{data}\"` |" in card and "use_peft: true" in card
    assert re.search(r"\| trl \| 1\.16\.\d+ \| 1\.16\.\d+ \|", card)
    assert json.loads((merged / "export.json").read_text())["merged"] is True

    # The launchers re-export before each server start; without --merge an adapter stays an adapter.
    assert cli.main(["export", "--model", str(run_dir / "sft"), "--merge", "--overwrite"]) == 0
    assert cli.main(["export", "--model", str(run_dir / "sft")]) == 0
    adapter_export = run_dir / "sft-export"
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= set(os.listdir(adapter_export))
    adapter_card = (adapter_export / "README.md").read_text()
    assert "library_name: peft" in adapter_card and "AutoPeftModelForCausalLM" in adapter_card


@pytest.fixture()
def full_model_run(tiny_model_dir, tmp_path):
    """A pipeline-shaped run folder holding a full (non-adapter) model and its manifest."""
    import shutil

    run_dir = tmp_path / "runs" / "demo"
    shutil.copytree(tiny_model_dir, run_dir / "grpo")
    config = {"model": {"model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"},
              "data": {"dataset": "demo:emotion", "task": "emotion", "template": "r1", "column_mapping": {}},
              "recipe": {"rewards": [{"name": "emotion_wheel", "weight": 1.0, "level": "level1"}]},
              "training": {"learning_rate": 2e-5}}
    manifest = {"run_name": "demo", "recipe": "/x/pipeline.yaml", "git_commit": "abc", "packages": {"trl": "1.16.0"},
                "stages": {"grpo": {"kind": "grpo", "status": "done", "output_dir": "runs/demo/grpo",
                                    "config": config}}}
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    return run_dir


class RecordingHfApi:
    """Stands in for huggingface_hub.HfApi at the network boundary: records each call."""

    calls: list = []

    def create_repo(self, *args, **kwargs):
        self.calls.append(("create_repo", args, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", (), kwargs))
        self.uploaded = sorted(path.name for path in Path(kwargs["folder_path"]).iterdir())
        RecordingHfApi.uploaded_card = (Path(kwargs["folder_path"]) / "README.md").read_text()
        return type("CommitInfo", (), {"commit_url": "https://huggingface.co/me/demo-grpo/commit/1"})()


def test_export_of_a_full_model_writes_the_card_from_the_manifest_and_pushes_it(full_model_run, monkeypatch):
    import huggingface_hub

    RecordingHfApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    target = export.export_model(str(full_model_run / "grpo"), push="me/demo-grpo", private=True)

    assert target == full_model_run / "grpo-export"
    assert RecordingHfApi.calls == [
        ("create_repo", ("me/demo-grpo",), {"private": True, "exist_ok": True}),
        ("upload_folder", (), {"repo_id": "me/demo-grpo", "folder_path": str(target),
                               "commit_message": "Upload affect-rl export"}),
    ]
    card = RecordingHfApi.uploaded_card
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card and "datasets" not in card.split("---")[1]
    assert 'pipeline("text-generation", model="me/demo-grpo")' in card and "vllm serve me/demo-grpo" in card
    assert "| `emotion_wheel` | 1.0 | level=level1 |" in card
    assert "No eval report found" in card and "| grpo | grpo | done |" in card
    assert "| trl | 1.16.0 |" in card


def test_push_failure_is_one_line_and_keeps_the_export(full_model_run, monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import OfflineModeIsEnabled

    class OfflineHfApi:
        def create_repo(self, *args, **kwargs):
            raise OfflineModeIsEnabled("Cannot reach https://huggingface.co/api/repos/create: offline mode is enabled.")

    monkeypatch.setattr(huggingface_hub, "HfApi", OfflineHfApi)
    with pytest.raises(EnvironmentProblem, match="hf auth login") as raised:
        export.export_model(str(full_model_run / "grpo"), push="me/x")
    assert "\n" not in str(raised.value) and (full_model_run / "grpo-export" / "README.md").is_file()


@pytest.mark.parametrize("arguments, message", [
    (["--model", "{tmp}"], "no config.json or adapter_config.json"),
    (["--model", "{run}/grpo", "--merge"], "is a full model, not a LoRA adapter"),
    (["--model", "{run}/grpo", "--output", "{run}/grpo"], "is the model folder itself"),
    (["--model", "{run}/grpo", "--output", "{run}"], "already exists; pass --overwrite"),
    (["--model", "{run}/grpo", "--output", "{run}", "--overwrite"], "that no export wrote"),
    (["--model", "{run}/grpo", "--report", "{tmp}/missing.json"], "--report .* does not exist"),
])
def test_user_errors_are_one_line_and_exit_2(full_model_run, tmp_path, capsys, arguments, message):
    argv = ["export", *(a.format(run=full_model_run, tmp=tmp_path) for a in arguments)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and len(err.strip().splitlines()) == 1
    assert not (full_model_run / "grpo-export").exists()


def test_a_run_relative_output_dir_names_the_stage_folder(tmp_path):
    folder = tmp_path / "runs" / "demo" / "sft"
    assert export.same_folder("runs/demo/sft", folder) and export.same_folder(str(folder), folder)
    assert not export.same_folder("runs/other/sft", folder) and not export.same_folder(None, folder)


def test_pipeline_hub_repositories_are_named_after_the_run(tmp_path):
    from affect_rl.pipeline import training_stage_config

    (tmp_path / "sft.yaml").write_text(yaml.safe_dump({"push_to_hub": True, "report_to": "none"}))
    named = {"name": "sft", "stage": "sft", "config": "sft.yaml"}
    cfg = training_stage_config(named, tmp_path / "run", tmp_path, "emotions-v2")
    assert cfg.training.hub_model_id == "emotions-v2-sft"
    chosen = dict(named, overrides={"hub_model_id": "lab/mine"})
    assert training_stage_config(chosen, tmp_path / "run", tmp_path, "emotions-v2").training.hub_model_id == "lab/mine"


def test_launchers_serve_the_merged_weights_of_a_lora_adapter(tmp_path):
    adapter = tmp_path / "sft"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM", "NCCL"))}
    launches = {
        "launch/local.sh": ({}, ["--gpus", "2"], "vllm"),
        "launch/slurm/train.slurm": ({"SLURM_JOB_NODELIST": "gpu[01-02]"}, [], "srun vllm"),
    }
    for script, (env, options, server_tag) in launches.items():
        result = subprocess.run(["bash", script, "--dry-run", *options, "grpo", "--config", "recipes/demo/grpo.yaml",
                                 "--model_name_or_path", str(adapter)], cwd=ROOT, capture_output=True, text=True,
                                env={**clean, **env}, timeout=120)
        assert result.returncode == 0, result.stderr
        lines = {line.split("] ", 1)[0][1:]: shlex.split(line.split("] ", 1)[1])
                 for line in result.stdout.splitlines() if line.startswith("[")}
        assert lines["export"] == ["python", "-m", "affect_rl.cli", "export", "--model", str(adapter), "--merge",
                                   "--output", f"{adapter}-merged", "--overwrite"], script
        server = lines[server_tag]
        assert server[server.index("--model") + 1] == f"{adapter}-merged", script
        assert list(lines).index("export") < list(lines).index(server_tag)
