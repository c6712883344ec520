"""The rows a training stage held out, and fingerprints of the rows it trained on.

A training stage writes ``heldout.jsonl`` (its held-out rows, canonical, re-loadable as a plain
task file) and ``train_fingerprints.npy`` (64-bit hashes of its training rows) into its output
folder. A pipeline's eval scores exactly those held-out rows by default, and refuses to score a
row that a stage it evaluates trained on. A row's fingerprint hashes its content, leaving out
``id``, ``split``, ``dataset`` and ``group`` (the same example under another id is the same example).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from affect_rl.data.media import images_to_files
from affect_rl.jsonl import write_jsonl

HELDOUT_FILE = "heldout.jsonl"
FINGERPRINTS_FILE = "train_fingerprints.npy"
_NOT_CONTENT = ("id", "split", "dataset", "group")


def row_fingerprint(row: dict) -> int:
    """A 64-bit hash of the row's content (JSON with sorted keys, media objects by their repr)."""
    content = {key: value for key, value in row.items() if key not in _NOT_CONTENT and value is not None}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, default=repr)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def save_stage_rows(train_rows, heldout_rows, output_dir: str | Path) -> dict:
    """Write the held-out rows and the training fingerprints; returns what the manifest records."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    # Embedded images (Image features, PIL) become files beside it, so the rows are plain JSON.
    heldout = images_to_files([dict(row) for row in heldout_rows], output_dir / "heldout_images")
    path = write_jsonl(heldout, output_dir / HELDOUT_FILE)
    fingerprints = np.array(sorted({row_fingerprint(row) for row in train_rows}), dtype=np.uint64)
    np.save(output_dir / FINGERPRINTS_FILE, fingerprints)
    return {"heldout": str(path), "heldout_rows": len(heldout), "train_rows": len(fingerprints)}


def recorded_rows(stage_dir: str | Path) -> dict | None:
    """What a finished stage recorded about its rows (for the manifest), or None if it recorded nothing."""
    heldout = Path(stage_dir) / HELDOUT_FILE
    if not heldout.is_file():
        return None
    with heldout.open(encoding="utf-8") as handle:
        count = sum(1 for line in handle if line.strip())
    fingerprints = Path(stage_dir) / FINGERPRINTS_FILE
    trained = len(np.load(fingerprints)) if fingerprints.is_file() else None
    return {"heldout": str(heldout), "heldout_rows": count, "train_rows": trained}


def trained_on(rows, stage_dir: str | Path) -> list[int]:
    """Indices of ``rows`` whose content a stage trained on (empty when it kept no fingerprints)."""
    path = Path(stage_dir) / FINGERPRINTS_FILE
    if not path.is_file():
        return []
    trained = np.load(path)
    wanted = np.array([row_fingerprint(row) for row in rows], dtype=np.uint64)
    return np.flatnonzero(np.isin(wanted, trained)).tolist()
