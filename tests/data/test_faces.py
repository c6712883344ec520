"""demo:faces: every Action Unit is drawn where it belongs, rows say what is drawn, splits are by identity."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import numpy as np
import pytest

from affect_rl.data import faces
from affect_rl.data.arguments import DataArguments
from affect_rl.data.loaders import load_splits

IDENTITY = faces.random_identity(random.Random(5))
POSE = faces.Pose()  # centred, untilted, no noise: two drawings differ only where the AUs differ
REQUIRED_AUS = {1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 16, 20, 23, 25, 26}
# Where each AU must change the face, and regions it must leave (all but) untouched: downsampling
# from the 4x drawing lets a change bleed a pixel or two across a region's edge.
CHANGES = {1: "brows", 2: "brows", 4: "brows", 5: "eyes", 6: "eyes", 7: "eyes", 9: "nose", 10: "mouth",
           12: "mouth", 15: "mouth", 16: "mouth", 20: "mouth", 23: "mouth", 25: "mouth", 26: "mouth"}  # fmt: skip
UNTOUCHED = {"brows": ("mouth",), "eyes": ("mouth",), "nose": ("brows", "mouth"), "mouth": ("brows", "eyes")}


def pixels(aus: dict[int, float]) -> np.ndarray:
    return np.asarray(faces.draw_face(IDENTITY, faces.Expression(aus), POSE), dtype=np.int16)


def region_change(before: np.ndarray, after: np.ndarray, region: str) -> int:
    left, top, right, bottom = faces.region_boxes(IDENTITY, POSE)[region]
    return int(np.abs(after[top:bottom, left:right] - before[top:bottom, left:right]).sum())


def test_the_drawn_aus_cover_the_required_ones_and_the_emfacs_table():
    assert set(faces.DRAWN_AUS) == REQUIRED_AUS
    assert set().union(*map(set, faces.prototypes().values())) <= REQUIRED_AUS
    assert faces.prototypes()["fear"] == [1, 2, 4, 5, 7, 20, 26]  # rewards/data/action_units.yaml


@pytest.mark.parametrize("au", sorted(CHANGES))
def test_each_au_changes_its_own_region_only(au):
    neutral, active = pixels({}), pixels({au: 1.0})
    region = CHANGES[au]
    change = region_change(neutral, active, region)
    assert change > 255 * 3 * 2  # as much as two pixels turned from black to white, at least
    for other in UNTOUCHED[region]:
        assert region_change(neutral, active, other) < change / 50, f"AU{au} changed the {other}"


def test_stronger_aus_move_more_pixels():
    neutral = pixels({})
    for au in (1, 12, 26):
        weak = region_change(neutral, pixels({au: 0.4}), CHANGES[au])
        strong = region_change(neutral, pixels({au: 1.0}), CHANGES[au])
        assert 0 < weak < strong


def test_drawing_is_deterministic_and_noise_is_seeded():
    pose = faces.Pose(noise=6.0, tilt=4.0)
    first = faces.draw_face(IDENTITY, faces.Expression({6: 1.0, 12: 0.8}), pose, seed=3)
    again = faces.draw_face(IDENTITY, faces.Expression({6: 1.0, 12: 0.8}), pose, seed=3)
    other = faces.draw_face(IDENTITY, faces.Expression({6: 1.0, 12: 0.8}), pose, seed=4)
    assert first.size == (faces.IMAGE_SIZE, faces.IMAGE_SIZE)
    assert first.tobytes() == again.tobytes() and first.tobytes() != other.tobytes()


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    """The generator at a sixth of its size: 10 identities."""
    folder = tmp_path_factory.mktemp("faces")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(faces, "IDENTITIES", {"train": 6, "validation": 2, "test": 2})
        rows = faces.generate(folder)
    return folder, rows


def test_rows_say_what_is_drawn_and_split_by_identity(small_set):
    folder, rows = small_set
    assert len(rows) == 6 * 6 * 2 + 2 * 6 + 2 * 6
    assert set(rows[0]) == {"id", "image", "aus", "emotion", "rationale", "identity", "split"}
    identities = {split: {row["identity"] for row in rows if row["split"] == split} for split in faces.IDENTITIES}
    assert [len(identities[split]) for split in ("train", "validation", "test")] == [6, 2, 2]
    assert not identities["train"] & identities["test"] and not identities["train"] & identities["validation"]
    prototypes = faces.prototypes()
    variants = 0
    for row in rows:
        assert (folder / row["image"]).is_file()
        assert set(row["aus"]) <= REQUIRED_AUS
        assert [int(code) for code in re.findall(r"\(AU(\d+)\)", row["rationale"])] == row["aus"]
        prototype = set(prototypes[row["emotion"]])
        difference = set(row["aus"]) ^ prototype
        assert len(difference) <= 1  # one AU missing or one extra at most
        variants += bool(difference)
    assert 0.15 < variants / len(rows) < 0.5
    assert Counter(row["emotion"] for row in rows) == {emotion: 16 for emotion in faces.EMOTIONS}


def test_a_variant_row_is_drawn_with_its_own_aus(small_set):
    folder, rows = small_set
    from PIL import Image

    row = next(r for r in rows if set(r["aus"]) - set(faces.prototypes()[r["emotion"]]))
    rng = random.Random(f"0-{row['id']}")
    assert faces.row_aus(row["emotion"], rng) == row["aus"]  # the recorded AUs are the generator's draw
    assert Image.open(folder / row["image"]).size == (faces.IMAGE_SIZE, faces.IMAGE_SIZE)


def test_demo_faces_loads_as_facial_rows_with_resolved_images(tmp_path, monkeypatch):
    monkeypatch.setenv("AFFECT_RL_CACHE", str(tmp_path))
    monkeypatch.setattr(faces, "IDENTITIES", {"train": 2, "validation": 1, "test": 1})
    args = DataArguments(dataset="demo:faces", template="r1")
    assert args.task == "facial"
    splits = load_splits(args)
    assert (len(splits["train"]), len(splits["test"])) == (24, 6)
    row = splits["test"][0]
    assert row["description"] is None and row["image"].startswith(str(tmp_path)) and row["aus"]
    stored = (tmp_path / "data" / f"faces-v{faces.VERSION}" / "rows.jsonl").read_text().splitlines()
    assert json.loads(stored[0])["image"].startswith("images/")  # relative in the file, absolute once loaded
