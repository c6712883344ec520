"""Greedy decoding for the eval (affect_rl/greedy_decoding.py): ``generate``'s greedy tokens, with the
prompts' common prefix run once and fewer rows in each step once some have ended."""

import pytest
import torch
from transformers import AutoModelForCausalLM, GenerationConfig

from affect_rl.greedy_decoding import greedy_decode
from affect_rl.rollouts import cut_after_first_eos, left_pad

PROMPTS = [(1, 57, 902, 4410), (1, 57, 902, 33), (1, 57, 902, 4410, 118, 9, 3005, 61), (1, 57, 902, 2718, 16, 77, 5)]


@pytest.fixture()
def model(peaked_model_dir):
    """Processors from the model's own generation config apply, as in generate: a bias on EOS ends
    some rows early, and the repetition penalty skips each row's left padding (EOS is the padding
    token), a per-row setting that must follow the rows as they leave the batch: built once for
    the whole batch, row 0 missed its EOS at step 10."""
    model = AutoModelForCausalLM.from_pretrained(peaked_model_dir, dtype=torch.float32).eval()
    model.generation_config.sequence_bias = [[[model.config.eos_token_id], 12.5]]
    model.generation_config.repetition_penalty = 1.5
    return model


def generate_greedily(model, max_new_tokens=14):
    input_ids, attention_mask = left_pad(PROMPTS, model.config.pad_token_id, "cpu")
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=[model.config.eos_token_id],
                              pad_token_id=model.config.pad_token_id)  # fmt: skip
    reference = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    expected = cut_after_first_eos(reference[:, input_ids.shape[1] :], [model.config.eos_token_id])
    return expected, greedy_decode(model, input_ids, attention_mask, config, [model.config.eos_token_id])


def test_greedy_decoding_gives_generates_tokens_rows_ending_at_different_steps(model):
    expected, decoded = generate_greedily(model)
    assert decoded == expected
    assert [len(tokens) for tokens in decoded] == [10, 5, 4, 14]  # three rows end early, one runs to the cap
    assert [tokens[-1] == model.config.eos_token_id for tokens in decoded] == [True, True, True, False]


def test_the_shared_prefix_runs_once_and_finished_rows_leave_the_batch(model):
    shapes = []
    model.register_forward_pre_hook(lambda _, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)),
                                    with_kwargs=True)  # fmt: skip
    _, decoded = generate_greedily(model)
    steps = max(len(tokens) for tokens in decoded)
    prefill, decoding = shapes[-steps - 2 : -steps], [rows for rows, _ in shapes[-steps:]]
    # The 3 tokens every prompt starts with, once; then each row's rest but its last token (the
    # longest prompt has 8 tokens); then one token a row while it runs.
    assert prefill == [(1, 3), (len(PROMPTS), 4)]
    assert decoding == [sum(len(tokens) > step for tokens in decoded) for step in range(steps)]
    assert decoding[:6] == [4, 4, 4, 4, 3, 2]
