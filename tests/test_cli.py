"""The command line: `--help` imports nothing heavy, list overrides, logging per rank, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from affect_rl import cli
from affect_rl.config import load_stage_config

ROOT = Path(__file__).resolve().parents[1]
HEAVY_MODULES = ("torch", "trl", "transformers", "datasets", "peft", "wandb")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_every_help_imports_no_heavy_module():
    subcommands = ["", "sft", "grpo", "pipeline", "demo", "eval", "export", "rewards", "score"]
    code = f"""
import contextlib, io, sys
from affect_rl import cli
for command in {subcommands!r}:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            cli.main([command, "--help"] if command else ["--help"])
        except SystemExit as done:
            assert done.code == 0, (command, done.code)
    assert "usage: affect-rl" in out.getvalue(), command
print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_stage_help_names_the_key_groups_and_list_keys_prints_every_key(capsys):
    with pytest.raises(SystemExit):
        cli.main(["grpo", "--help"])
    help_text = capsys.readouterr().out
    assert "TRL's GRPOConfig" in help_text and "affect-rl grpo --list-keys" in help_text

    assert cli.main(["grpo", "--list-keys"]) == 0
    listing = capsys.readouterr().out
    for key in ("model_name_or_path: str or None", "lora_r: int = 16", "dataset:", "wandb_project:",
                "rewards: a list = []", "num_generations:", "report_to:"):
        assert key in listing, key


def test_report_to_takes_several_values():
    cfg = load_stage_config("sft", None, ["--report_to", "wandb", "tensorboard", "--max_steps", "3"])
    assert cfg.training.report_to == ["wandb", "tensorboard"]
    assert cfg.training.max_steps == 3


def test_several_values_for_a_single_value_key_is_a_one_line_error(capsys):
    assert cli.main(["sft", "--output_dir", "a", "b"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "'output_dir' expects str or None, got ['a', 'b'] (list)" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("env, shown", [({}, True), ({"RANK": "0"}, True), ({"RANK": "3"}, False),
                                        ({"LOCAL_RANK": "1"}, False)])
def test_info_logs_only_on_rank_zero(env, shown):
    code = """
import logging
from affect_rl.cli import configure_logging
configure_logging()
logging.getLogger("affect_rl.probe").info("info-line")
logging.getLogger("affect_rl.probe").warning("warning-line")
"""
    clean = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**clean, "PYTHONPATH": str(ROOT), **env})
    assert result.returncode == 0, result.stderr
    assert ("info-line" in result.stderr) is shown
    assert "warning-line" in result.stderr


def test_recipe_paths_fall_back_to_the_recipes_shipped_with_affect_rl(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no recipes/ folder here
    assert cli.shipped_recipe("recipes/demo/sft.yaml") == str(ROOT / "recipes" / "demo" / "sft.yaml")
    assert cli.shipped_recipe("demo/pipeline.yaml") == str(ROOT / "recipes" / "demo" / "pipeline.yaml")
    assert cli.shipped_recipe("recipes/demo/missing.yaml") == "recipes/demo/missing.yaml"
    (tmp_path / "recipes" / "demo").mkdir(parents=True)
    (tmp_path / "recipes" / "demo" / "sft.yaml").write_text("max_steps: 1\n")
    assert cli.shipped_recipe("recipes/demo/sft.yaml") == "recipes/demo/sft.yaml"  # the user's own file wins
