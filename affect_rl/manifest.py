"""A pipeline run's manifest.json: its stages, resolved configs, package versions and git commit."""

from __future__ import annotations

import json
import subprocess
import time
from importlib import metadata
from pathlib import Path

from affect_rl.errors import ConfigError
from affect_rl.files import atomic_write_text

TRACKED_PACKAGES = ("affect-rl", "torch", "transformers", "trl", "peft", "accelerate", "datasets", "wandb")


def load_manifest(run_dir: Path, recipe_path: str, run_name: str) -> dict:
    """The run's manifest: the existing one when resuming, else a new one (nothing is written)."""
    path = run_dir / "manifest.json"
    if path.is_file():
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ConfigError(f"{path} is not valid JSON: move it aside (the stage folders keep their configs) "
                              "and run again.") from None
        if isinstance(manifest, dict) and isinstance(manifest.get("stages"), dict):
            return manifest
        raise ConfigError(f"{path} is not an affect-rl manifest: use another --output_dir.")
    return {
        "run_name": run_name,
        "recipe": str(Path(recipe_path).resolve()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": git_commit(),
        "packages": {name: package_version(name) for name in TRACKED_PACKAGES},
        "stages": {},
    }


def write_manifest(run_dir: Path, manifest: dict) -> None:
    """Write manifest.json atomically (temporary file, fsync, rename)."""
    atomic_write_text(run_dir / "manifest.json", json.dumps(manifest, indent=2, default=str))


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
