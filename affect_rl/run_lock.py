"""One run per output folder: a lock file naming its holder.

``<folder>/.affect_rl.lock`` is created exclusively (``O_CREAT | O_EXCL``, atomic on local and
NFSv3+ filesystems) and holds the holder's pid, host and Slurm job id. A second run on the same
folder stops with a one-line error naming the holder. A lock whose holder is gone is taken over
with a warning: a pid that no longer exists on this host, or the same Slurm job (a requeued
job restarts under its old id). A lock from another host cannot be checked and counts as held.
Under ``accelerate launch`` only global rank 0 takes the lock (the other ranks of the same run
share the folder).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import time
from pathlib import Path

from affect_rl.errors import ConfigError

logger = logging.getLogger(__name__)

LOCK_FILE = ".affect_rl.lock"


def is_main_rank() -> bool:
    """True outside ``accelerate launch``/``torchrun`` and on their global rank 0."""
    return os.environ.get("RANK", "0") == "0"


def pid_alive(pid: int) -> bool:
    """True when a process with ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """The lock of ``folder``: ``acquire()`` or a ConfigError naming the holder; ``release()``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.held = False

    def holder_record(self) -> dict:
        return {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
                "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    def acquire(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.read_holder()
                if not self.is_stale(holder):
                    raise ConfigError(self.held_message(holder)) from None
                if holder.get("pid") != os.getpid():
                    logger.warning("Taking over the stale lock %s of pid %s on %s (no longer running)",
                                   self.path, holder.get("pid"), holder.get("host"))
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(descriptor, "w") as handle:
                json.dump(self.holder_record(), handle)
            self.held = True
            atexit.register(self.release)
            return self
        raise ConfigError(f"Could not lock {self.folder}: other runs keep taking {self.path}; start one run at a time.")

    def read_holder(self) -> dict:
        try:
            holder = json.loads(self.path.read_text())
            return holder if isinstance(holder, dict) else {}
        except (OSError, ValueError):
            return {}  # being written this instant, or garbage

    def is_stale(self, holder: dict) -> bool:
        """The holder is this process, a dead process on this host, or this same Slurm job."""
        if not holder:  # unreadable: stale only once it is old enough not to be mid-write
            try:
                return time.time() - self.path.stat().st_mtime > 60
            except FileNotFoundError:
                return True
        job = os.environ.get("SLURM_JOB_ID")
        if job and holder.get("slurm_job_id") == job:
            return True
        if holder.get("host") != socket.gethostname():
            return False
        pid = holder.get("pid")
        return not isinstance(pid, int) or pid == os.getpid() or not pid_alive(pid)

    def held_message(self, holder: dict) -> str:
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}"
        if holder.get("slurm_job_id"):
            who += f", Slurm job {holder['slurm_job_id']}"
        return (f"{self.folder} is in use by another affect-rl run ({who}, since {holder.get('since', '?')}): "
                f"wait for it or stop it, or use another output_dir; if that run is gone, delete {self.path}.")

    def release(self) -> None:
        atexit.unregister(self.release)
        if self.held:
            self.held = False
            if self.read_holder().get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
