"""Shared fixtures: a tiny randomly initialised Llama with SmolLM2's real tokenizer."""

from __future__ import annotations

import json
import os

import pytest

# Tests never talk to the W&B servers or the hub.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


EMOTION_ROWS = [
    {"text": "My sister flew home after two years abroad.", "emotions": ["happy", "excited"]},
    {"text": "The landlord kept our deposit without a reason.", "emotions": ["angry"]},
    {"text": "I forgot my best friend's birthday.", "emotions": ["guilty", "ashamed"]},
    {"text": "The scan results came back clear.", "emotions": ["calm"]},
    {"text": "Nobody came to my art show opening.", "emotions": ["sad", "lonely"]},
]


@pytest.fixture()
def emotion_file(tmp_path):
    """A small emotion-task JSONL file (no split column: stages hold out a seeded share)."""
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in EMOTION_ROWS))
    return str(path)


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer (materialises the default model once if needed)."""
    from affect_rl.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


def save_tiny_llama(folder, tokenizer, **config) -> str:
    """A 2-layer, 64-wide Llama (seed 0) with ``tokenizer`` and its chat template, saved to ``folder``;
    ``config``: further LlamaConfig values."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **config,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smollm2_tokenizer):
    """A 2-layer, 64-wide Llama with SmolLM2's tokenizer and chat template, saved to disk."""
    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), smollm2_tokenizer, max_position_embeddings=1024)


@pytest.fixture(scope="session")
def peaked_model_dir(tmp_path_factory, smollm2_tokenizer):
    """A tiny Llama initialised with a wide spread (std 0.4): its next-token distributions are
    peaked (entropy ~6.6 nats, not the ~10.8 of a uniform one) and depend on the context, so a
    wrong position or cache entry changes the samples. EOS is the padding token (a zero row)."""
    return save_tiny_llama(tmp_path_factory.mktemp("peaked-llama"), smollm2_tokenizer, initializer_range=0.4)


@pytest.fixture()
def eos_bias(smollm2_tokenizer):
    """GRPO ``generation_kwargs``: a logit bias on EOS that ends about a third of the peaked model's
    12-token completions early, so that both ended and truncated completions (and different rewards) occur."""
    return {"sequence_bias": [[[smollm2_tokenizer.eos_token_id], 13.0]]}


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory, tiny_model_dir):
    """An Idefics3 VLM built as the offline one is, from the tiny Llama: a 1-layer, 32-wide vision
    encoder on 32 px images (4 image tokens per image)."""
    from affect_rl.offline_vlm import VisionSpec, build_vlm

    folder = tmp_path_factory.mktemp("tiny-vlm") / "vlm"
    build_vlm(tiny_model_dir, VisionSpec(image_size=32, patch_size=8, hidden_size=32, num_layers=1, num_heads=2,
                                         scale_factor=2), folder)  # fmt: skip
    return str(folder)
