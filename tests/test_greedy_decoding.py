"""Greedy decoding that drops finished rows (affect_rl/greedy_decoding.py): ``generate``'s greedy
tokens, with fewer rows in each step once some have ended."""

import pytest
import torch
from transformers import AutoModelForCausalLM, GenerationConfig

from affect_rl.greedy_decoding import greedy_decode
from affect_rl.rollouts import cut_after_first_eos, left_pad

PROMPTS = [(1, 57, 902, 4410), (1, 33), (1, 57, 902, 4410, 118, 9, 3005, 61), (1, 2718, 16, 77, 5)]


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
    assert [len(tokens) for tokens in decoded] == [10, 14, 4, 14]  # two rows end early, two run to the cap
    assert [tokens[-1] == model.config.eos_token_id for tokens in decoded] == [True, False, True, False]


def test_finished_rows_leave_the_batch(model):
    batch_sizes = []
    model.register_forward_pre_hook(lambda _, args, kwargs: batch_sizes.append(kwargs["input_ids"].shape[0]),
                                    with_kwargs=True)  # fmt: skip
    _, decoded = generate_greedily(model)
    batch_sizes = batch_sizes[-max(len(tokens) for tokens in decoded) :]  # this call's decoding steps
    running = [sum(len(tokens) > step for tokens in decoded) for step in range(len(batch_sizes))]
    assert batch_sizes == running
    assert batch_sizes[0] == len(PROMPTS) > batch_sizes[-1]
