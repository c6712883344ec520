"""Crash-safe file operations: atomic writes, moving old output aside, publishing a folder's files.

A write that is interrupted (power loss, a killed job, a full disk) must leave either the old
file or the new one, never a truncated mix: :func:`atomic_write_text` writes a sibling
temporary file, fsyncs it, renames it over the target (``os.replace`` is atomic on POSIX) and
fsyncs the folder so the rename itself survives a crash. Finished work is never deleted:
:func:`move_aside` renames it to ``NAME.old-TIMESTAMP``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically and durably."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(staging, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    fsync_folder(path.parent)


@contextlib.contextmanager
def staged_folder(target: str | Path, replace: bool = False):
    """A new folder beside ``target`` to write into, renamed to ``target`` when the block ends
    without an error, so no reader (another rank, a later run) sees a half-written folder; it is
    removed in every other case. An existing ``target`` is kept (another process finished first)
    unless ``replace``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield staging
        if target.exists():
            if not replace:
                return
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fsync_folder(folder: str | Path) -> None:
    """Make renames and new entries in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def move_aside(path: str | Path) -> Path:
    """Rename ``path`` to ``path.old-YYYYmmdd-HHMMSS`` (``-2``, ``-3``... if taken); returns the new path."""
    path = Path(path)
    base = path.with_name(f"{path.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    target, number = base, 1
    while target.exists():
        number += 1
        target = base.with_name(f"{base.name}-{number}")
    path.rename(target)
    fsync_folder(path.parent)
    return target


def publish_folder(staging: str | Path, target: str | Path, last: str = "config.json") -> None:
    """Move every entry of ``staging`` into ``target`` by rename, then remove ``staging``.

    Each file appears whole (a rename within one filesystem); ``last`` is moved after all the
    others, so a folder whose ``config.json`` is new also has the new weights beside it.
    """
    staging, target = Path(staging), Path(target)
    entries = sorted(staging.iterdir(), key=lambda entry: entry.name == last)
    for entry in entries:
        destination = target / entry.name
        if destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)  # a sub-folder of an earlier final save, superseded
        os.replace(entry, destination)
    staging.rmdir()
    fsync_folder(target)
