"""Image columns: every image is checked before training, errors name the row and the path, and the
training sets carry the images as datasets Image features."""

from __future__ import annotations

import io
import json

import pytest
from datasets import Dataset
from PIL import Image

from affect_rl.data import media
from affect_rl.data.arguments import DataArguments
from affect_rl.data.heldout import save_stage_rows
from affect_rl.data.loaders import load_splits
from affect_rl.data.rendering import to_grpo_dataset, to_sft_dataset
from affect_rl.errors import DataError


@pytest.fixture()
def face_file(tmp_path):
    """Four facial rows with images beside the JSONL file, referenced by relative paths."""
    (tmp_path / "img").mkdir()
    rows = []
    for number, (emotion, aus) in enumerate([("happiness", [6, 12]), ("sadness", [1, 4, 15]),
                                             ("surprise", [1, 2, 5, 26]), ("anger", [4, 5, 7, 23])]):  # fmt: skip
        Image.new("RGB", (40 + number, 30), (number * 40, 80, 120)).save(tmp_path / "img" / f"{number}.png")
        rows.append({"id": f"f{number}", "image": f"img/{number}.png", "aus": aus, "emotion": emotion,
                     "split": "test" if number == 3 else "train"})  # fmt: skip
    path = tmp_path / "faces.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def png_bytes(size=(8, 6)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_paths_feature_dicts_and_pil_images_all_open(tmp_path):
    Image.new("RGB", (8, 6)).save(tmp_path / "a.png")
    values = [str(tmp_path / "a.png"), {"bytes": png_bytes(), "path": None}, {"bytes": None, "path": str(tmp_path / "a.png")},
              Image.new("L", (8, 6))]  # fmt: skip
    assert [media.open_image(value).size for value in values] == [(8, 6)] * 4
    assert media.check_images([{"image": values[0], "images": values[1:]}]) == 4


def test_missing_image_names_row_and_path(tmp_path):
    rows = [{"id": "a", "image": None}, {"id": "face-7", "image": str(tmp_path / "gone.png")}]
    with pytest.raises(DataError, match=r"row id 'face-7': image .*gone\.png does not exist; fix the path"):
        media.check_images(rows)


def test_unreadable_image_names_row_and_path(tmp_path):
    (tmp_path / "broken.png").write_text("not an image")
    with pytest.raises(DataError, match=r"row 2: image .*broken\.png cannot be read .*replace the file"):
        media.check_images([{"images": []}, {"images": [str(tmp_path / "broken.png")]}])
    with pytest.raises(DataError, match=r"row 1: image an embedded image \(3 bytes\) cannot be read"):
        media.check_images([{"image": {"bytes": b"abc", "path": None}}])


def test_oversized_image_names_its_size_and_the_limit(tmp_path):
    Image.new("RGB", (30, 20)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match=r"row id 'x': image .*big\.png is 30 x 20 pixels, more than the 500 accepted; "
                                        r"downscale it"):  # fmt: skip
        media.check_images([{"id": "x", "image": str(tmp_path / "big.png")}], max_pixels=500)
    assert media.MAX_IMAGE_PIXELS == 8192 * 8192


def test_text_models_keep_their_error_and_vlms_refuse_video(face_file):
    rows = load_splits(DataArguments(dataset=str(face_file), task="facial"))["train"]
    with pytest.raises(DataError, match="row 1 has a 'image' column, but tiny is a text model"):
        media.check_text_model_rows(rows, "tiny")
    media.check_vision_model_rows(rows, "vlm")  # images are fine
    with pytest.raises(DataError, match="row 1 has a 'video' column, which affect-rl does not yet pass"):
        media.check_vision_model_rows([{"video": "clip.mp4"}], "vlm")


def test_sft_and_grpo_sets_carry_every_rows_images_as_image_features(face_file):
    args = DataArguments(dataset=str(face_file), task="facial", template="r1")
    train = load_splits(args)["train"]
    sft = to_sft_dataset(train, args)
    assert sft.column_names == ["prompt", "completion", "images"]
    assert type(sft.features["images"].feature).__name__ == "Image"
    assert [[image.size for image in row["images"]] for row in sft] == [[(40, 30)], [(41, 30)], [(42, 30)]]
    user_turn = sft[0]["prompt"][-1]["content"]
    assert isinstance(user_turn, str) and "Action Units" in user_turn  # TRL adds the image part itself
    grpo = to_grpo_dataset(train, args)
    assert {"prompt", "images", "image", "aus", "emotion"} <= set(grpo.column_names)
    # TRL's is_conversational would read a `completion` column (None here) instead of the prompt.
    assert "completion" in train.column_names and "completion" not in grpo.column_names
    assert grpo[2]["images"][0].size == (42, 30) and grpo[2]["aus"] == [1, 2, 5, 26]


def test_rows_without_images_get_no_images_column(emotion_file):
    args = DataArguments(dataset=emotion_file, task="emotion", test_size=0.4)
    assert "images" not in to_sft_dataset(load_splits(args)["train"], args).column_names


def test_a_missing_image_stops_the_data_check_before_training(face_file, tmp_path):
    (tmp_path / "img" / "1.png").unlink()
    rows = load_splits(DataArguments(dataset=str(face_file), task="facial"))["train"]
    with pytest.raises(DataError, match=r"row id 'f1': image .*img/1\.png does not exist"):
        media.check_vision_model_rows(rows, "vlm")


def test_held_out_embedded_images_are_saved_as_files(tmp_path):
    embedded = Dataset.from_list([{"image": Image.new("RGB", (9, 7)), "emotion": "fear", "aus": [1]}])
    rows = [dict(row) for row in Dataset.from_list(embedded.to_list())]  # {"bytes", "path"}, as sources read them
    assert isinstance(rows[0]["image"], dict) and rows[0]["image"]["bytes"]
    save_stage_rows(rows, rows, tmp_path / "stage")
    saved = json.loads((tmp_path / "stage" / "heldout.jsonl").read_text())
    assert Image.open(saved["image"]).size == (9, 7) and "heldout_images" in saved["image"]


def test_with_images_column_merges_image_and_images_in_order(tmp_path):
    for name, size in (("a", (5, 5)), ("b", (6, 6)), ("c", (7, 7))):
        Image.new("RGB", size).save(tmp_path / f"{name}.png")
    rows = [{"image": str(tmp_path / "a.png"), "images": [str(tmp_path / "b.png"), str(tmp_path / "c.png")]},
            {"image": None, "images": None}]  # fmt: skip
    ds = media.with_images_column(Dataset.from_list([{"k": 1}, {"k": 2}]), rows)
    assert [image.size for image in ds[0]["images"]] == [(5, 5), (6, 6), (7, 7)] and ds[1]["images"] == []
