"""Vision-language models: building, loading, what trains, TRL's collation of image rows, batched
generation on images, and the vLLM inputs (vLLM itself mocked at its boundary)."""

from __future__ import annotations

import importlib.machinery
import sys
import types

import pytest
import torch
from PIL import Image

from affect_rl import generation
from affect_rl.config import RecipeArguments, build_stage_config
from affect_rl.data.media import multimodal_prompt
from affect_rl.errors import DataError
from affect_rl.generation import generate_completions
from affect_rl.models import (
    is_vision_language,
    load_causal_lm,
    load_processing_class,
    training_setup,
    vision_parts,
)


def model_config(path, **extra):
    from trl import ModelConfig

    return ModelConfig(model_name_or_path=path, **extra)


def trainable_parts(model) -> dict[str, bool]:
    """Whether any parameter of each part of the VLM trains, and whether LoRA went anywhere but the text model."""
    names = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    return {
        "lora_in_text_model": any("lora_" in n and ".text_model." in n for n in names),
        "lora_elsewhere": any("lora_" in n and ".text_model." not in n for n in names),
        "text_model_weights": any(".text_model." in n and "lora_" not in n for n in names),
        "vision_tower": any(".vision_model." in n for n in names),
        "projector": any(".connector." in n for n in names),
    }


def test_built_vlm_loads_with_the_auto_classes_and_keeps_the_text_weights(tiny_vlm_dir, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    assert is_vision_language(tiny_vlm_dir) and not is_vision_language(tiny_model_dir)
    vlm, _ = load_causal_lm(model_config(tiny_vlm_dir))
    text = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert type(vlm).__name__ == "Idefics3ForConditionalGeneration"
    name = "layers.1.mlp.down_proj.weight"
    assert torch.equal(vlm.model.text_model.state_dict()[name], text.model.state_dict()[name])
    assert vlm.lm_head.weight.data_ptr() == vlm.model.text_model.embed_tokens.weight.data_ptr()  # still tied
    processor = load_processing_class(tiny_vlm_dir, padding_side="left")
    assert type(processor).__name__ == "Idefics3Processor" and processor.tokenizer.padding_side == "left"
    assert processor.image_seq_len == 4 and vlm.config.image_token_id == processor.image_token_id
    assert type(load_processing_class(tiny_model_dir)).__name__ != "Idefics3Processor"


def test_vision_parts_are_found_by_name(tiny_vlm_dir):
    vlm, _ = load_causal_lm(model_config(tiny_vlm_dir))
    assert vision_parts(vlm) == {"language_model": ["model.text_model"], "vision_tower": ["model.vision_model"],
                                 "projector": ["model.connector"]}  # fmt: skip


@pytest.mark.parametrize("train_vision_tower, train_projector", [(False, False), (False, True), (True, True)])
def test_lora_targets_the_language_model_and_the_options_train_the_rest(tiny_vlm_dir, train_vision_tower,
                                                                        train_projector):  # fmt: skip
    from peft import get_peft_model

    vlm, _ = load_causal_lm(model_config(tiny_vlm_dir))
    args = model_config(tiny_vlm_dir, use_peft=True, lora_r=4, lora_alpha=8)
    recipe = RecipeArguments(train_vision_tower=train_vision_tower, train_projector=train_projector)
    peft_model = get_peft_model(vlm, training_setup(vlm, args, recipe))
    assert trainable_parts(peft_model) == {"lora_in_text_model": True, "lora_elsewhere": False,
                                           "text_model_weights": False, "vision_tower": train_vision_tower,
                                           "projector": train_projector}  # fmt: skip
    lora_layers = {name.rsplit(".lora_A", 1)[0].rsplit(".", 1)[-1] for name, _ in peft_model.named_parameters()
                   if "lora_A" in name}  # fmt: skip
    assert lora_layers == {"q_proj", "v_proj"}  # PEFT's default for a Llama text model


def test_all_linear_lora_stays_out_of_the_vision_tower(tiny_vlm_dir):
    from peft import get_peft_model

    vlm, _ = load_causal_lm(model_config(tiny_vlm_dir))
    args = model_config(tiny_vlm_dir, use_peft=True, lora_r=4, lora_target_modules=["all-linear"])
    peft_model = get_peft_model(vlm, training_setup(vlm, args, RecipeArguments(train_projector=False)))
    layers = {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name, _ in peft_model.named_parameters() if "lora_A" in name}
    assert layers == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert not trainable_parts(peft_model)["lora_elsewhere"]


def test_full_fine_tune_freezes_the_vision_tower_unless_asked(tiny_vlm_dir):
    for train_vision_tower in (False, True):
        vlm, _ = load_causal_lm(model_config(tiny_vlm_dir))
        recipe = RecipeArguments(train_vision_tower=train_vision_tower, train_projector=False)
        assert training_setup(vlm, model_config(tiny_vlm_dir), recipe) is None
        parts = trainable_parts(vlm)
        assert parts["text_model_weights"] and parts["vision_tower"] == train_vision_tower and not parts["projector"]


def test_text_models_train_as_before(tiny_model_dir):
    model, _ = load_causal_lm(model_config(tiny_model_dir))
    config = training_setup(model, model_config(tiny_model_dir, use_peft=True, lora_r=4), RecipeArguments())
    assert config.target_modules is None and not config.modules_to_save  # TRL's config, untouched


FACE_ROWS = [{"id": f"r{i}", "aus": aus, "emotion": emotion}
             for i, (aus, emotion) in enumerate([([6, 12], "happiness"), ([1, 4, 15], "sadness")])]  # fmt: skip


def image_rows(tmp_path, count=2):
    rows = []
    for index in range(count):
        path = tmp_path / f"face{index}.png"
        Image.new("RGB", (48, 40 + 8 * index), (30 * index, 120, 200 - 40 * index)).save(path)
        rows.append(dict(FACE_ROWS[index % 2], id=f"r{index}", image=str(path)))
    return rows


def test_trl_collates_image_rows_with_loss_on_the_completion_only(tiny_vlm_dir, tmp_path):
    from datasets import Dataset
    from trl import SFTTrainer

    from affect_rl.data import DataArguments, to_sft_dataset

    rows = image_rows(tmp_path)
    data = DataArguments(dataset=str(tmp_path / "x.jsonl"), task="facial", template="r1")
    dataset = to_sft_dataset(Dataset.from_list(rows), data)
    cfg = build_stage_config("sft", {"model_name_or_path": tiny_vlm_dir, "output_dir": str(tmp_path / "out"),
                                     "max_steps": 1, "report_to": "none", "bf16": False}, "test")  # fmt: skip
    processor = load_processing_class(tiny_vlm_dir, padding_side="right")
    trainer = SFTTrainer(model=tiny_vlm_dir, args=cfg.training, train_dataset=dataset, processing_class=processor)
    batch = trainer.data_collator([dataset[0], dataset[1]])
    assert batch["pixel_values"].shape == (2, 1, 3, 32, 32)  # resized by the processor to the encoder's size
    image_token = processor.image_token_id
    assert ((batch["input_ids"] == image_token).sum(dim=1) == 4).all()
    carries_loss = batch["labels"] != -100
    assert not carries_loss[batch["input_ids"] == image_token].any()
    completion = processor.tokenizer.decode(batch["input_ids"][0][carries_loss[0]])
    assert completion.startswith("<think>AU6 (cheek raiser)") and "<answer>happiness</answer>" in completion


@pytest.fixture()
def fp32_generation(monkeypatch):
    """Generation in fp32, so a batch and single prompts give bit-identical greedy tokens."""
    monkeypatch.setattr(generation, "generation_dtype", lambda device: "float32")


def test_eval_generation_is_batched_on_images(tiny_vlm_dir, tmp_path, fp32_generation):
    from affect_rl.data import render_prompt

    rows = image_rows(tmp_path, count=3)
    prompts = [render_prompt(row, "facial", "r1") for row in rows]
    images = [[row["image"]] for row in rows]
    batched = generate_completions(tiny_vlm_dir, prompts, batch_size=3, max_new_tokens=6, progress=False, images=images)
    single = [generate_completions(tiny_vlm_dir, [p], batch_size=1, max_new_tokens=6, progress=False, images=[i])[0]
              for p, i in zip(prompts, images)]  # fmt: skip
    assert list(batched) == single and len(batched) == 3
    assert all(1 <= n <= 6 for n in batched.num_tokens)


def test_images_change_what_the_vlm_sees(tiny_vlm_dir, tmp_path):
    from affect_rl.data import render_prompt

    rows = image_rows(tmp_path)
    processor = load_processing_class(tiny_vlm_dir)
    vlm, _ = load_causal_lm(model_config(tiny_vlm_dir))
    prompt = render_prompt(rows[0], "facial", "r1")
    logits = []
    for row in rows:
        inputs = processor.apply_chat_template(multimodal_prompt(prompt, [row["image"]]), add_generation_prompt=True,
                                               tokenize=True, return_dict=True, return_tensors="pt")  # fmt: skip
        logits.append(vlm(**inputs).logits[0, -1])
    assert not torch.allclose(logits[0], logits[1])


def test_a_text_model_given_images_is_refused(tiny_model_dir, tmp_path):
    from affect_rl.data import render_prompt

    rows = image_rows(tmp_path, count=1)
    with pytest.raises(DataError, match="is a text model, which cannot take them"):
        generate_completions(tiny_model_dir, [render_prompt(rows[0], "facial", "r1")], images=[[rows[0]["image"]]])


class FakeVLLM:
    """vllm's LLM and SamplingParams, recording what affect-rl passes across the boundary."""

    calls: dict = {}

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class LLM:
        def __init__(self, **kwargs):
            FakeVLLM.calls["init"] = kwargs

        def generate(self, inputs, params, use_tqdm=False):
            FakeVLLM.calls["generate"] = (inputs, params.kwargs)
            output = types.SimpleNamespace(text="<think>AU6</think><answer>happiness</answer>", token_ids=[1, 2, 3],
                                           finish_reason="stop")  # fmt: skip
            return [types.SimpleNamespace(outputs=[output]) for _ in inputs]

        def chat(self, prompts, params, use_tqdm=False):
            FakeVLLM.calls["chat"] = prompts
            return self.generate(prompts, params)


def test_vllm_gets_token_ids_and_images_as_trl_passes_them(tiny_vlm_dir, tmp_path, monkeypatch):
    from affect_rl.data import render_prompt

    fake = types.ModuleType("vllm")
    fake.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    fake.LLM, fake.SamplingParams = FakeVLLM.LLM, FakeVLLM.SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setattr(generation, "vllm_usable", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    FakeVLLM.calls.clear()
    rows = image_rows(tmp_path)
    prompts = [render_prompt(row, "facial", "r1") for row in rows]
    images = [[rows[0]["image"]], [rows[0]["image"], rows[1]["image"]]]
    completions = generate_completions(tiny_vlm_dir, prompts, max_new_tokens=32, images=images, progress=False)

    assert list(completions) == ["<think>AU6</think><answer>happiness</answer>"] * 2 and completions.num_tokens == [3, 3]
    init = FakeVLLM.calls["init"]
    assert init["model"] == tiny_vlm_dir and init["limit_mm_per_prompt"] == {"image": 2}
    inputs, sampling = FakeVLLM.calls["generate"]
    assert sampling == {"n": 1, "temperature": 0.0, "top_p": 1.0, "max_tokens": 32, "skip_special_tokens": True,
                        "seed": 0}  # greedy  # fmt: skip
    assert set(inputs[0]) == {"prompt_token_ids", "multi_modal_data"}
    one, two = inputs[0]["multi_modal_data"]["image"], inputs[1]["multi_modal_data"]["image"]
    assert isinstance(one, Image.Image) and one.size == (48, 40)  # one image: the image itself, as TRL passes it
    assert [image.size for image in two] == [(48, 40), (48, 48)]  # several: a list
    processor = load_processing_class(tiny_vlm_dir)
    expected = processor.apply_chat_template(multimodal_prompt(prompts[1], images[1]), add_generation_prompt=True,
                                             tokenize=True, return_dict=True)["input_ids"][0]  # fmt: skip
    assert inputs[1]["prompt_token_ids"] == list(expected)
    assert inputs[1]["prompt_token_ids"].count(processor.image_token_id) == 2 * 4
    assert "chat" not in FakeVLLM.calls  # text models keep llm.chat


def test_the_select_stage_samples_image_rows_with_their_images(tiny_vlm_dir, tiny_model_dir, tmp_path):
    import json

    from affect_rl.select import run

    rows = [dict(row, split="train") for row in image_rows(tmp_path)] + [dict(image_rows(tmp_path)[0], id="t", split="test")]
    data = tmp_path / "faces.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    values = {"dataset": str(data), "task": "facial", "template": "r1", "max_new_tokens": 4, "batch_size": 2,
              "num_samples": 2, "rewards": [{"name": "format"}], "pass_reward": "format"}  # fmt: skip
    summary = run(build_stage_config("select", values | {"model_name_or_path": tiny_vlm_dir,
                                                         "output_dir": str(tmp_path / "vlm")}, "test"))  # fmt: skip
    assert summary["rows"] == 2
    samples = [json.loads(line) for line in (tmp_path / "vlm" / "samples.jsonl").read_text().splitlines()]
    assert [len(sample["completions"]) for sample in samples] == [2, 2]
    text_model = build_stage_config("select", values | {"model_name_or_path": tiny_model_dir,
                                                        "output_dir": str(tmp_path / "text")}, "test")  # fmt: skip
    with pytest.raises(DataError, match="has a 'image' column, but .* is a text model"):
        run(text_model)
