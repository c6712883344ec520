"""The wheel: built from the checkout, installed in a fresh venv, it runs without a clone (the recipes
and data ship inside it); the extras follow TRL's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "runs", "outputs", "build", "wandb", "logs", "__pycache__",
                                    "*.egg-info", ".pytest_cache")


def test_extras_depend_on_trls_own_extras():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for extra in ("vllm", "deepspeed", "quantization"):
        assert extras[extra] == [f"trl[{extra}]>=1.16,<2"], extra
    assert "trl>=1.16,<2" in project["dependencies"]


def run(argv, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{argv}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_without_a_clone(tmp_path):
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    run([sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--no-build-isolation", "-q", "-w",
         tmp_path / "dist"])
    (wheel,) = (tmp_path / "dist").glob("affect_rl-*.whl")

    # Every module and data file of the checkout is in the wheel; recipes/ lands in affect_rl/recipes.
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {path.relative_to(source).as_posix() for folder in ("affect_rl", "rewards")
                for path in (source / folder).rglob("*") if path.is_file()}
    expected |= {"affect_rl/" + path.relative_to(source).as_posix() for path in (source / "recipes").rglob("*")
                 if path.is_file()}
    assert expected - shipped == set()

    # A fresh venv holding only the wheel; the dependencies come from this environment's
    # site-packages, appended after the venv's own (a .pth path entry), so they cost no download.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel])
    (site_packages,) = (venv / "lib").glob("python3*/site-packages")
    (site_packages / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"  # no recipes/ here, and the checkout is not on the path
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

    help_text = run([venv / "bin" / "affect-rl", "--help"], cwd=elsewhere, env=env).stdout
    assert "usage: affect-rl" in help_text and "export" in help_text
    probe = """
from pathlib import Path
import affect_rl
from affect_rl.cli import shipped_recipe
from affect_rl.config import read_yaml_mapping
from affect_rl.data import load_splits
from affect_rl.pipeline import DEMO_RECIPE, training_stage_config, validate_pipeline

print("=", Path(affect_rl.__file__).parent)
print("=", DEMO_RECIPE)
print("=", shipped_recipe("recipes/demo/grpo.yaml"))
for stage in validate_pipeline(read_yaml_mapping(str(DEMO_RECIPE)), str(DEMO_RECIPE), []):
    if stage["stage"] != "eval":
        cfg = training_stage_config(stage, Path("runs/demo"), DEMO_RECIPE.parent, "demo")
        print("=", cfg.stage, len(load_splits(cfg.data)["train"]))
"""
    output = run([python, "-c", probe], cwd=elsewhere, env=env).stdout
    lines = [line[2:] for line in output.splitlines() if line.startswith("= ")]
    package = site_packages / "affect_rl"
    assert lines[:3] == [str(package), str(package / "recipes" / "demo" / "pipeline.yaml"),
                         str(package / "recipes" / "demo" / "grpo.yaml")]
    assert [line.split()[0] for line in lines[3:]] == ["sft", "grpo"]
    assert all(int(line.split()[1]) > 100 for line in lines[3:])  # the demo data ships too
    assert "emotion_wheel" in run([venv / "bin" / "affect-rl", "rewards"], cwd=elsewhere, env=env).stdout
