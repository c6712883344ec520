"""The image recipes without training: the Facial-R1 and EmoCaliber GPU recipes parse, their rewards
and options check, templates fit tasks and formats, every stage of their pipelines resolves; the
Qwen2.5-VL architecture they train splits into language model, vision tower and projector as the
VLM options expect. The faces recipe is checked the same way (and trained in tests/test_faces_pipeline.py).

Not checked here (no torchvision for the CPU torch, no Qwen weights offline): Qwen2.5-VL's processor
and chat template, hence collating, generating from and vLLM-serving Qwen image rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from affect_rl import recipe_path
from affect_rl.config import RecipeArguments, validate_rewards
from affect_rl.data.formats import get_format
from affect_rl.evaluate import build_eval_arguments
from affect_rl.models import is_vision_language, training_setup, vision_parts
from affect_rl.pipeline import (
    load_pipeline_recipe,
    training_stage_config,
    validate_pipeline,
)
from rewards.templates import get_template

GPU_RECIPES = ("facial_r1", "emocaliber", "faces")


def pipeline_stages(name: str):
    path = recipe_path(f"{name}/pipeline.yaml")
    recipe = load_pipeline_recipe(str(path))
    return path, recipe, validate_pipeline(recipe, str(path), [], [])


def stage_configs(name: str) -> dict:
    _, _, stages = pipeline_stages(name)
    return {stage["name"]: training_stage_config(stage, Path("runs") / name, name)
            for stage in stages if stage["stage"] != "eval"}  # fmt: skip


@pytest.mark.parametrize("name", GPU_RECIPES)
def test_every_stage_resolves_with_rewards_templates_and_formats_that_fit(name):
    configs = stage_configs(name)
    assert configs, name
    for cfg in configs.values():
        data = cfg.data
        assert data.task in get_template(data.template).tasks
        if data.format:
            assert data.task in get_format(data.format).tasks
        if cfg.stage == "grpo":
            entries = validate_rewards(cfg)  # names, options and stage-filled options checked
            assert len(entries) == len(cfg.recipe.rewards) == len(cfg.training.reward_weights)
    _, _, stages = pipeline_stages(name)
    for stage in stages:
        if stage["stage"] == "eval":
            values = {key: value for key, value in stage.items() if key not in ("name", "stage", "models")}
            values.setdefault("dataset", "demo:faces")  # held-out rows: the stages' own data settings apply
            values.setdefault("task", "facial")
            build_eval_arguments(values, f"{name} eval")


def test_facial_r1_reproduces_the_official_hyperparameters():
    configs = stage_configs("facial_r1")
    sft, grpo = configs["sft"], configs["grpo"]
    assert (sft.training.learning_rate, sft.training.num_train_epochs, sft.training.max_length) == (5e-6, 2, 2048)
    assert (sft.training.per_device_train_batch_size, sft.training.gradient_accumulation_steps) == (2, 2)
    assert sft.data.format == "fea20k" and sft.model.model_name_or_path == "Qwen/Qwen2.5-VL-7B-Instruct"
    training = grpo.training
    assert (training.learning_rate, training.beta, training.num_generations, training.max_completion_length) == (
        1e-6, 0.0, 8, 256)  # fmt: skip
    assert (training.per_device_train_batch_size, training.gradient_accumulation_steps, training.num_train_epochs) == (
        8, 4, 8)  # fmt: skip
    assert [entry["name"] for entry in grpo.recipe.rewards] == ["au_f1", "accuracy", "format"]
    assert grpo.recipe.train_vision_tower and sft.recipe.train_vision_tower  # Facial-R1 freezes nothing


def test_emocaliber_has_three_stages_ending_in_the_calibration_reward():
    configs = stage_configs("emocaliber")
    assert list(configs) == ["sft", "sft_confidence", "grpo"]
    stage1, stage2, rl = configs.values()
    assert (stage1.data.template, stage2.data.template, rl.data.template) == ("r1", "emocaliber", "emocaliber")
    assert (stage1.training.learning_rate, stage2.training.learning_rate, rl.training.learning_rate) == (1e-5, 4e-6, 1e-6)
    assert stage2.model.model_name_or_path.endswith("sft") and rl.model.model_name_or_path.endswith("sft_confidence")
    assert rl.recipe.rewards == [{"name": "calibration", "weight": 1.0, "variant": "emocaliber"}]
    training = rl.training
    assert (training.beta, training.num_generations, training.max_completion_length, training.scale_rewards) == (
        0.01, 8, 2048, "none")  # fmt: skip
    # 64 prompts x 8 samples per rollout on 8 GPUs, two optimizer steps of 32 prompts (step3:15,25).
    assert training.per_device_train_batch_size * 8 * training.steps_per_generation == 64 * 8
    assert training.per_device_train_batch_size * 8 * training.gradient_accumulation_steps == 32 * 8


@pytest.fixture(scope="module")
def tiny_qwen_vl(tmp_path_factory):
    """A randomly initialised two-layer Qwen2.5-VL (the architecture of both GPU recipes), saved to disk."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config={"vocab_size": 512, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "bos_token_id": 0, "eos_token_id": 1,
                     "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}},
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                       "fullatt_block_indexes": [1]},
    )  # fmt: skip
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("qwen-vl")
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(folder)
    return str(folder)


def test_qwen_vl_parts_lora_targets_and_freezing(tiny_qwen_vl):
    from peft import get_peft_model
    from transformers import AutoModelForImageTextToText
    from trl import ModelConfig

    assert is_vision_language(tiny_qwen_vl)
    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen_vl)
    assert vision_parts(model) == {"language_model": ["model.language_model"], "vision_tower": ["model.visual"],
                                   "projector": ["model.visual.merger"]}  # fmt: skip
    lora = training_setup(model, ModelConfig(model_name_or_path=tiny_qwen_vl, use_peft=True, lora_r=4),
                          RecipeArguments(train_vision_tower=False, train_projector=True))  # fmt: skip
    trainable = [name for name, p in get_peft_model(model, lora).named_parameters() if p.requires_grad]
    assert any("language_model" in n and "lora_A" in n for n in trainable)
    assert not any("visual" in n and "lora_" in n for n in trainable)
    assert any(".merger." in n for n in trainable) and not any("visual.blocks" in n for n in trainable)

    full = AutoModelForImageTextToText.from_pretrained(tiny_qwen_vl)
    training_setup(full, ModelConfig(model_name_or_path=tiny_qwen_vl),
                   RecipeArguments(train_vision_tower=False, train_projector=True))  # fmt: skip
    frozen = {name for name, p in full.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith("model.visual.") and ".merger." not in n for n in frozen)
