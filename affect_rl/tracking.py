"""Experiment tracking: W&B (online or offline), TensorBoard or none.

Without a W&B API key, and unless the user set ``WANDB_MODE=online``, runs are written offline
under the stage's output folder and the CLI says how to sync them later.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path


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


def prepare_tracking(training_args, group: str | None = None) -> None:
    """Set the W&B environment before the trainer starts (it reads these variables)."""
    if "wandb" not in reported_to(training_args):
        return
    os.environ.setdefault("WANDB_PROJECT", "affect-rl")
    os.environ.setdefault("WANDB_DIR", str(Path(training_args.output_dir).resolve()))
    if group:
        os.environ["WANDB_RUN_GROUP"] = group
    if not has_wandb_credentials() and os.environ.get("WANDB_MODE") != "online":
        os.environ["WANDB_MODE"] = "offline"


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
            lines.append(f"W&B run logged online (project {os.environ.get('WANDB_PROJECT', 'affect-rl')}).")
    if "tensorboard" in targets:
        logging_dir = getattr(training_args, "logging_dir", None) or output_dir / "runs"
        lines.append(f"TensorBoard logs: tensorboard --logdir {logging_dir}")
    return lines
