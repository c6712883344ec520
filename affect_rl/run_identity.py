"""Run identity: which resolved configuration produced a stage's output folder.

Every stage writes ``<output_dir>/affect_rl_config.json`` before it loads anything: the
resolved configuration and a SHA-256 of the part of it that decides what is trained. A later
run into the same folder (a pipeline re-run, a standalone ``affect-rl sft``, a requeued Slurm
job) compares its own hash with it. If they differ, it stops and lists the changed keys instead
of resuming old checkpoints under new settings, or keeping an old result under a new recipe.

Keys that do not change what is trained are left out of the hash (:data:`IGNORED_KEYS`): where
output, logs and tracking go, how often checkpoints and logs are written, resume, the hub, and
where the vLLM server runs (a requeued job may get another node). A model inside the stage's
run folder (a pipeline's ``model_from``) is hashed by its path relative to that folder, so a run
folder keeps its identity when it is moved or named by another path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from affect_rl.errors import ConfigError
from affect_rl.files import atomic_write_text

logger = logging.getLogger(__name__)

IDENTITY_FILE = "affect_rl_config.json"
IGNORED_KEYS = {
    "training": frozenset({
        "output_dir", "logging_dir", "resume_from_checkpoint", "run_name", "report_to", "project",
        "trackio_space_id", "trackio_bucket_id", "trackio_static_space_id", "push_to_hub", "hub_model_id",
        "hub_strategy", "hub_token", "hub_private_repo", "hub_always_push", "hub_revision",
        "save_strategy", "save_steps", "save_total_limit", "save_on_each_node", "logging_strategy",
        "logging_steps", "logging_first_step", "logging_nan_inf_filter", "log_level", "log_level_replica",
        "log_on_each_node", "disable_tqdm", "log_completions", "log_completions_hub_repo", "log_unique_prompts",
        "num_completions_to_print", "vllm_server_host", "vllm_server_port", "vllm_server_base_url",
        "vllm_server_timeout", "vllm_group_port",
    }),
    "recipe": frozenset({"num_sample_prompts"}),
}
RUN_FOLDER = "$RUN"  # stands for the parent of the stage's output folder in hashed paths
MAX_LISTED_CHANGES = 6


def resolved_config(cfg) -> dict:
    """A StageConfig's fully resolved configuration, JSON-ready (what the manifest records)."""
    return {
        "stage": cfg.stage,
        "model": dataclasses.asdict(cfg.model),
        "data": dataclasses.asdict(cfg.data),
        "recipe": dataclasses.asdict(cfg.recipe),
        "training": training_settings(cfg.training),
    }


def training_settings(training) -> dict:
    """TRL's config as it serialises itself (``to_json_string``: enums and tokens made JSON-safe);
    a data stage's own settings (select, synthesize) as a plain dataclass."""
    if hasattr(training, "to_json_string"):
        return json.loads(training.to_json_string())
    return dataclasses.asdict(training)


def identity_view(config: dict, output_dir: str | Path) -> dict:
    """The part of a resolved config that identifies the run: ``config`` less :data:`IGNORED_KEYS`,
    with a model path inside the run folder written relative to it (``$RUN/sft``)."""
    view = {group: ({k: v for k, v in values.items() if k not in IGNORED_KEYS.get(group, ())}
                    if isinstance(values, dict) else values)
            for group, values in config.items()}
    model = view.get("model")
    if isinstance(model, dict) and isinstance(model.get("model_name_or_path"), str):
        model["model_name_or_path"] = relative_to_run(model["model_name_or_path"], output_dir)
    return view


def relative_to_run(path: str, output_dir: str | Path) -> str:
    """``path`` as ``$RUN/...`` when it lies in the folder holding ``output_dir``, else unchanged."""
    run_folder = Path(output_dir).absolute().parent
    try:
        return f"{RUN_FOLDER}/{Path(path).absolute().relative_to(run_folder).as_posix()}"
    except ValueError:
        return path


def config_hash(config: dict, output_dir: str | Path) -> str:
    """SHA-256 of the identity view of ``config`` (canonical JSON: sorted keys)."""
    canonical = json.dumps(identity_view(config, output_dir), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def changed_keys(old: dict, new: dict, output_dir: str | Path) -> list[str]:
    """``["training.learning_rate: 0.0001 -> 0.0002", ...]`` between two resolved configs."""
    before, after = flatten(identity_view(old, output_dir)), flatten(identity_view(new, output_dir))
    missing = object()
    return [f"{key}: {short(before.get(key, missing))} -> {short(after.get(key, missing))}"
            for key in sorted(set(before) | set(after)) if before.get(key, missing) != after.get(key, missing)]


def flatten(mapping: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def short(value: Any) -> str:
    """A one-line repr of a config value, cut at 60 characters; ``(unset)`` for a missing key."""
    if not isinstance(value, (str, int, float, bool, list, dict, type(None))):
        return "(unset)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_identity(output_dir: str | Path) -> dict | None:
    """The identity record of ``output_dir``, or None when it has none."""
    path = Path(output_dir) / IDENTITY_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(f"{path} is not valid JSON, so this folder's run cannot be identified: "
                          f"move {Path(output_dir)} aside or train into another output_dir.") from None
    if not isinstance(record, dict) or "config_hash" not in record or "config" not in record:
        raise ConfigError(f"{path} lacks config_hash/config: move {Path(output_dir)} aside or train into "
                          "another output_dir.")
    return record


def write_identity(output_dir: str | Path, config: dict, **extra: Any) -> dict:
    """Record ``config`` and its hash in ``output_dir`` (kept: ``created`` and ``resumed_from``)."""
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    previous = read_identity(folder) or {}
    record = {
        "config_hash": config_hash(config, folder),
        "created": previous.get("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "resumed_from": previous.get("resumed_from", []),
        **extra,
        "config": config,
    }
    atomic_write_text(folder / IDENTITY_FILE, json.dumps(record, indent=2, default=str) + "\n")
    return record


def record_resume(output_dir: str | Path, checkpoint: str) -> None:
    """Append ``checkpoint`` to the folder's ``resumed_from`` list."""
    record = read_identity(output_dir)
    if record is not None:
        record["resumed_from"] = [*record.get("resumed_from", []), str(checkpoint)]
        atomic_write_text(Path(output_dir) / IDENTITY_FILE, json.dumps(record, indent=2, default=str) + "\n")


def mismatch(recorded: dict | None, config: dict, output_dir: str | Path) -> list[str] | None:
    """The changed keys when ``recorded`` (an identity record) differs from ``config``, else None."""
    if recorded is None or recorded["config_hash"] == config_hash(config, output_dir):
        return None
    # The stored hash decides; the key list explains it (an old record may hash differently).
    return changed_keys(recorded["config"], config, output_dir) or ["(the recorded hash differs)"]


def mismatch_message(output_dir: str | Path, changes: list[str], how_to_proceed: str) -> str:
    """One line: which folder, which keys changed (old -> new) and how to go on."""
    listed = "; ".join(changes[:MAX_LISTED_CHANGES])
    if len(changes) > MAX_LISTED_CHANGES:
        listed += f"; and {len(changes) - MAX_LISTED_CHANGES} more"
    return (f"{output_dir} holds a run with a different config ({listed}), so it was left as it is: "
            f"{how_to_proceed}.")


def check_identity(output_dir: str | Path, config: dict, how_to_proceed: str) -> None:
    """Raise a ConfigError when ``output_dir`` was written under another config; warn when it holds
    training output without a recorded config (written before affect-rl recorded one)."""
    folder = Path(output_dir)
    recorded = read_identity(folder)
    if recorded is None:
        if folder.is_dir() and any(folder.glob("checkpoint-*")):
            logger.warning("%s has checkpoints but no %s, so its config cannot be compared with this run's",
                           folder, IDENTITY_FILE)
        return
    changes = mismatch(recorded, config, folder)
    if changes:
        raise ConfigError(mismatch_message(folder, changes, how_to_proceed))
