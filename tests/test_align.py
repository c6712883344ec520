"""The align stage: its loss, its label words, and a run on the tiny VLM that moves image tokens
onto their labels' word embeddings while the language model stays as it was."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from affect_rl import align
from affect_rl.config import build_stage_config
from affect_rl.errors import ConfigError


def test_the_loss_is_the_cosine_choice_plus_the_scaled_distance():
    labels = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # two label words; mean square 1.25
    tokens = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # image 0 on its word, image 1 half way to its word
    gold = torch.tensor([0, 1])
    loss = align.alignment_loss(tokens, labels[gold], labels, gold, weight=2.0)
    # Both images point at their own word (cosine 1, the other 0): CE = log(1 + e^-10) each.
    choice = math.log(1 + math.exp(-align.SIMILARITY_SCALE))
    distance = (0 + 0 + 0 + 1.0) / 4 / 1.25  # only image 1's second coordinate is off, by 1
    assert loss.item() == pytest.approx(choice + 2.0 * distance, rel=1e-5)
    swapped = align.alignment_loss(tokens, labels[gold], labels, torch.tensor([1, 0]), weight=0.0)
    assert swapped.item() == pytest.approx(math.log(1 + math.exp(align.SIMILARITY_SCALE)), rel=1e-5)


def test_the_nearest_label_accuracy_reads_the_mean_image_token():
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    tokens = torch.tensor([[[1.0, 0.2], [0.8, 0.0]], [[0.9, 0.1], [0.0, 0.2]]])  # image 1's mean leans to word 0
    assert align.nearest_label_accuracy(tokens, labels, torch.tensor([0, 1])) == 0.5


def test_labels_that_share_a_first_token_are_refused(smollm2_tokenizer):
    ids = align.label_token_ids(smollm2_tokenizer, ["happiness", "sadness"])
    assert len(set(ids)) == 2
    with pytest.raises(ConfigError, match="AU12, AU15 start with the same token"):
        align.label_token_ids(smollm2_tokenizer, ["AU12", "AU15"])


def test_bad_settings_are_refused_with_the_key():
    with pytest.raises(ConfigError, match="mm_projector_lr must be a finite number"):
        align.AlignArguments(mm_projector_lr=float("nan"))
    with pytest.raises(ConfigError, match="max_steps must be a positive integer"):
        align.AlignArguments(max_steps=0)


def coloured_rows(folder):
    """Eight training faces, red ones happy and blue ones sad, and two held-out ones."""
    rows = []
    for index in range(10):
        emotion = ("happiness", "sadness")[index % 2]
        colour = (200 + index, 20, 30) if emotion == "happiness" else (20, 30, 200 + index)
        path = folder / f"face{index}.png"
        Image.new("RGB", (32, 32), colour).save(path)
        rows.append({"id": f"f{index}", "image": path.name, "aus": [6, 12] if index % 2 == 0 else [1, 15],
                     "emotion": emotion, "split": "train" if index < 8 else "test"})  # fmt: skip
    data = folder / "faces.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return data


def test_an_align_run_moves_image_tokens_onto_their_words_and_leaves_the_language_model(tiny_vlm_dir, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForImageTextToText, AutoProcessor

    data = coloured_rows(tmp_path)
    values = {"model_name_or_path": tiny_vlm_dir, "dataset": str(data), "task": "facial", "test_split": "test",
              "max_steps": 30, "per_device_train_batch_size": 4, "learning_rate": 1e-2, "mm_projector_lr": 1e-4,
              "logging_steps": 10, "output_dir": str(tmp_path / "align")}  # fmt: skip
    summary = align.run(build_stage_config("align", values, "test"))

    assert summary["labels"] == ["happiness", "sadness"] and summary["training_rows"] == 8
    history = json.loads((tmp_path / "align" / "summary.json").read_text())["history"]
    assert len(history) == 30 and summary["final_loss"] < history[0]["loss"] / 2
    assert summary["final_accuracy"] == 1.0
    assert (tmp_path / "align" / "alignment.png").stat().st_size > 0
    assert len((tmp_path / "align" / "heldout.jsonl").read_text().splitlines()) == 2

    aligned = load_file(tmp_path / "align" / "model.safetensors")
    original = load_file(f"{tiny_vlm_dir}/model.safetensors")
    changed = {name for name in original if not torch.equal(aligned[name], original[name])}
    assert changed and all("vision_model" in name or "connector" in name for name in changed)

    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "align")
    processor = AutoProcessor.from_pretrained(tmp_path / "align")
    words = model.get_input_embeddings().weight[align.label_token_ids(processor.tokenizer, summary["labels"])]
    images = [Image.open(tmp_path / f"face{index}.png").convert("RGB") for index in (8, 9)]  # held out
    with torch.no_grad():
        tokens = align.image_tokens(model, processor.image_processor([[image] for image in images],
                                                                     return_tensors="pt"))  # fmt: skip
    assert align.nearest_label_accuracy(tokens, words, torch.tensor([0, 1])) == 1.0


def test_the_align_stage_refuses_a_text_model(tiny_model_dir, tmp_path):
    data = coloured_rows(tmp_path)
    values = {"model_name_or_path": tiny_model_dir, "dataset": str(data), "task": "facial", "test_split": "test",
              "output_dir": str(tmp_path / "align")}  # fmt: skip
    with pytest.raises(Exception, match="text model"):
        align.run(build_stage_config("align", values, "test"))


def test_an_align_folder_written_under_another_config_is_refused(tiny_vlm_dir, tmp_path):
    data = coloured_rows(tmp_path)
    values = {"model_name_or_path": tiny_vlm_dir, "dataset": str(data), "task": "facial", "test_split": "test",
              "max_steps": 2, "per_device_train_batch_size": 2, "output_dir": str(tmp_path / "align")}  # fmt: skip
    align.run(build_stage_config("align", values, "test"))
    weights = (tmp_path / "align" / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="holds a run with a different config .*max_steps"):
        align.run(build_stage_config("align", values | {"max_steps": 3}, "test"))
    assert (tmp_path / "align" / "model.safetensors").read_bytes() == weights  # nothing was lost


def test_labels_outside_label_set_and_a_diverging_loss_say_what_to_change(tiny_vlm_dir, tmp_path):
    faces = [json.loads(line) for line in coloured_rows(tmp_path).read_text().splitlines()]
    data = tmp_path / "labelled.jsonl"  # the label task, where label_set applies
    data.write_text("".join(json.dumps({"id": row["id"], "image": row["image"], "label": row["emotion"],
                                        "split": row["split"]}) + "\n" for row in faces))  # fmt: skip
    values = {"model_name_or_path": tiny_vlm_dir, "dataset": str(data), "task": "label", "test_split": "test",
              "max_steps": 3, "per_device_train_batch_size": 2}  # fmt: skip
    with pytest.raises(ConfigError, match="training rows are labelled sadness, which label_set lacks"):
        align.run(build_stage_config("align", values | {"label_set": ["happiness", "anger"],
                                                        "output_dir": str(tmp_path / "a")}, "test"))  # fmt: skip
    with pytest.raises(ConfigError, match=r"the loss became (nan|inf) at step \d; lower learning_rate"):
        align.run(build_stage_config("align", values | {"learning_rate": 1e30, "mm_projector_lr": 1e30,
                                                        "output_dir": str(tmp_path / "b")}, "test"))  # fmt: skip
    assert not (tmp_path / "b" / "model.safetensors").exists()  # nothing half-trained was published
