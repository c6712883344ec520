"""Experiment tracking: one W&B run per stage (online or offline), TensorBoard or none.

TRL's trainers log to W&B through transformers' ``WandbCallback``, which starts the run and takes
its settings from the environment. :func:`prepare_tracking` sets them for one stage, as Axolotl
maps its ``wandb_*`` keys: ``WANDB_PROJECT`` from the recipe's ``wandb_project`` (else the
variable, else ``affect-rl``), ``WANDB_ENTITY`` from ``wandb_entity``, ``WANDB_DIR`` the stage's
output folder and ``WANDB_JOB_TYPE`` the stage kind; the run's name is TRL's ``run_name``, and a
pipeline sets ``WANDB_RUN_GROUP`` to its run's name. :func:`end_stage_run` finishes the run and
undoes those variables. Without it the next stage of a pipeline logs into the first stage's run:
the callback only starts a run when none is open. wandb also reads its environment once per
process, so the next stage's settings take effect only after ``wandb.teardown()``.

Without a W&B API key, and unless the user set ``WANDB_MODE=online``, runs are written offline
under the stage's output folder and the CLI says how to sync them later.
"""

from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path

DEFAULT_PROJECT = "affect-rl"
# Variables prepare_tracking() set for the current stage -> their value before (None: unset).
_stage_environment: dict[str, str | None] = {}


def reported_to(training_args) -> list[str]:
    """The integrations a TrainingArguments reports to, as a list."""
    report_to = training_args.report_to or []
    return [report_to] if isinstance(report_to, str) else list(report_to)


def has_wandb_credentials() -> bool:
    """True when W&B can authenticate: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def _set_for_stage(name: str, value: str) -> None:
    _stage_environment.setdefault(name, os.environ.get(name))
    os.environ[name] = value


def prepare_tracking(cfg) -> None:
    """Set the W&B environment of stage ``cfg`` (a StageConfig) before its trainer starts."""
    if "wandb" not in reported_to(cfg.training):
        return
    _set_for_stage("WANDB_PROJECT", cfg.recipe.wandb_project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT)
    if cfg.recipe.wandb_entity:
        _set_for_stage("WANDB_ENTITY", cfg.recipe.wandb_entity)
    _set_for_stage("WANDB_DIR", os.environ.get("WANDB_DIR") or str(Path(cfg.training.output_dir).resolve()))
    _set_for_stage("WANDB_JOB_TYPE", cfg.stage)
    if not has_wandb_credentials() and os.environ.get("WANDB_MODE") != "online":
        _set_for_stage("WANDB_MODE", "offline")


def end_stage_run() -> None:
    """Finish the stage's W&B run, if one is open, and restore the variables prepare_tracking set."""
    wandb = sys.modules.get("wandb")  # imported by the trainer only when something uses W&B
    if wandb is not None:
        if wandb.run is not None:
            wandb.finish()
        wandb.teardown()
    for name, value in _stage_environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _stage_environment.clear()


def tracking_summary(training_args) -> list[str]:
    """Lines telling the user where the run's tracking files are and how to look at them."""
    targets = reported_to(training_args)
    output_dir = Path(training_args.output_dir)
    lines = []
    if "wandb" in targets:
        wandb_dir = Path(os.environ.get("WANDB_DIR", output_dir)) / "wandb"
        if os.environ.get("WANDB_MODE") == "offline":
            lines.append(f"W&B ran offline: run files are in {wandb_dir}. "
                         f"Upload them with: wandb login && wandb sync {wandb_dir}/offline-run-*")
        else:
            lines.append(f"W&B run logged online (project {os.environ.get('WANDB_PROJECT', DEFAULT_PROJECT)}).")
    if "tensorboard" in targets:
        logging_dir = getattr(training_args, "logging_dir", None) or output_dir / "runs"
        lines.append(f"TensorBoard logs: tensorboard --logdir {logging_dir}")
    return lines
