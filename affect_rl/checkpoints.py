"""Which checkpoints can be resumed from.

A checkpoint is complete when ``trainer_state.json`` (the last file transformers writes into
``checkpoint-N``) parses and its weights are there and readable: weight files, every shard of a
sharded index, or a DeepSpeed ``global_step`` folder named by ``latest``. Only headers and zip
directories are read, not the tensors. Resuming picks the newest complete checkpoint and logs
each newer one it skips. After a NaN stop, checkpoints that may hold the diverged weights are
renamed ``nonfinite-checkpoint-N`` (kept for inspection, never resumed from).
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from pathlib import Path

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")  # transformers' PREFIX_CHECKPOINT_DIR pattern
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "adapter_model.safetensors", "adapter_model.bin")
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def numbered_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """``(N, path)`` of every ``checkpoint-N`` folder, newest first."""
    if not output_dir.is_dir():
        return []
    numbered = [(int(match.group(1)), path) for path in output_dir.iterdir()
                if path.is_dir() and (match := CHECKPOINT_NAME.match(path.name))]
    return sorted(numbered, reverse=True)


def checkpoint_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete checkpoint, or None: ``trainer_state.json`` (written last by
    transformers) must parse, and the weights (files, shards or a DeepSpeed ``global_step``) must be
    there and readable (safetensors headers and .bin zip directories are read, not the tensors)."""
    state = folder / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json (the save was interrupted)"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return "trainer_state.json is truncated or not JSON"
    try:
        weights = listed_weight_files(folder)
    except (ValueError, KeyError, TypeError, AttributeError):
        return "its shard index is truncated or not a shard index"
    deepspeed_tag = folder / "latest"
    if deepspeed_tag.is_file() and (folder / deepspeed_tag.read_text().strip()).is_dir():
        return None if not weights else weights_problem(weights)
    if not weights:
        return "no weights file"
    return weights_problem(weights)


def listed_weight_files(folder: Path) -> list[Path]:
    """The single weight files present, plus every shard that a shard index names (present or not)."""
    files = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    for index in (folder / name for name in SHARD_INDEXES):
        if index.is_file():
            files += [folder / shard for shard in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    return files


def weights_problem(paths: list[Path]) -> str | None:
    """Why one of ``paths`` cannot be loaded (missing, or its header / zip directory unreadable), or None."""
    from safetensors import safe_open

    for path in paths:
        if not path.is_file():
            return f"{path.name} is missing"
        try:
            if path.suffix == ".safetensors":
                with safe_open(str(path), "pt"):
                    pass
            else:
                zipfile.ZipFile(path).close()  # torch.save's format; a cut file has no central directory
        except Exception as error:  # noqa: BLE001 -- any failure to read means not loadable
            return f"{path.name} is unreadable ({type(error).__name__})"
    return None


def last_complete_checkpoint(output_dir: Path) -> str | None:
    """The newest complete ``checkpoint-N`` of ``output_dir`` (None if there is none)."""
    for _, path in numbered_checkpoints(output_dir):
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        logger.warning("Skipping %s: incomplete checkpoint, %s", path, problem)
    return None


def weights_finite(folder: Path) -> bool | None:
    """True if every tensor of the checkpoint's weights is finite, False if one is not, None when
    they cannot be read here (e.g. only a DeepSpeed checkpoint)."""
    try:
        files = listed_weight_files(folder)
        if not files or weights_problem(files):
            return None
        return all(file_finite(path) for path in files)
    except Exception:  # noqa: BLE001 -- unreadable: not resumable anyway, nothing to decide
        return None


def file_finite(path: Path) -> bool:
    """True if every floating-point tensor of one weights file is finite (read tensor by tensor)."""
    import torch
    from safetensors import safe_open

    if path.suffix == ".safetensors":
        with safe_open(str(path), "pt") as handle:
            tensors = [handle.get_tensor(name) for name in handle.keys()]
    else:
        tensors = [t for t in torch.load(path, map_location="cpu", weights_only=True).values() if torch.is_tensor(t)]
    return all(bool(torch.isfinite(tensor).all()) for tensor in tensors if tensor.is_floating_point())


def set_aside_diverged_checkpoints(output_dir: Path, last_finite_step: int) -> None:
    """Rename to ``nonfinite-checkpoint-N`` the checkpoints saved after the last finite log and,
    from the newest down, those whose weights are not finite (the update that made the loss NaN
    may have been saved before the NaN was logged)."""
    for step, path in numbered_checkpoints(output_dir):
        if step <= last_finite_step and weights_finite(path) is not False:
            break
        path.rename(output_dir / f"nonfinite-{path.name}")
        logger.warning("%s may hold the diverged weights: renamed to nonfinite-%s", path, path.name)
