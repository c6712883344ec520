"""Shared prompt forward (affect_rl/shared_prompts.py): the same log-probabilities, entropies, loss
and gradients as TRL's fused forward, with each distinct prompt run once."""

import pytest
import torch
import trl.trainer.utils as trl_utils
from tiny_recipes import FIXED_COMPLETIONS, tiny_grpo_trainer, tiny_recipe
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from affect_rl.shared_prompts import share_prompt_forward, shared_prompt_plan, shuffle_groups

PROMPTS, GENERATIONS, PROMPT_LEN, COMPLETION_LEN = 3, 4, 9, 6


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny Llama with a wide initialisation (std 0.4), so its outputs depend on the context."""
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                         initializer_range=0.4)
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    return str(folder)


def grpo_batch(generations=GENERATIONS):
    """Rows as GRPO's loss sees them: left-padded prompts (each repeated ``generations`` times, rows
    shuffled), right-padded completions, one completion masked whole (mask_truncated_completions)."""
    generator = torch.Generator().manual_seed(0)
    prompts = torch.randint(3, 300, (PROMPTS, PROMPT_LEN), generator=generator)
    prompt_mask = torch.ones_like(prompts)
    for row, padding in enumerate([0, 2, 5]):
        prompt_mask[row, :padding] = 0
    rows = PROMPTS * generations
    order = torch.randperm(rows, generator=generator)
    prompt_rows = torch.arange(PROMPTS).repeat_interleave(generations)[order]
    completions = torch.randint(3, 300, (rows, COMPLETION_LEN), generator=generator)
    completion_mask = torch.ones_like(completions)
    for row in range(rows):
        completion_mask[row, 1 + row % COMPLETION_LEN:] = 0
    completion_mask[order[0]] = 0
    input_ids = torch.cat([prompts[prompt_rows], completions], dim=1)
    attention_mask = torch.cat([prompt_mask[prompt_rows], completion_mask], dim=1)
    labels = input_ids.masked_fill(attention_mask == 0, -100)  # as TRL's _get_per_token_logps_and_entropies
    labels[:, :-COMPLETION_LEN] = -100
    return input_ids, attention_mask, labels


def fused_pass(model_dir, batch, shared: bool, **kwargs):
    """Loss, completion log-probs, entropies and parameter gradients of one fused-LM-head pass, and
    the rows x positions that entered the embedding at each backbone call."""
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    if shared:
        share_prompt_forward(model)
    positions = []
    model.get_input_embeddings().register_forward_hook(lambda module, args, output: positions.append(args[0].numel()))
    input_ids, attention_mask, labels = batch
    output = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True, **kwargs)
    log_probs, entropy = output.log_probs[:, -COMPLETION_LEN:], output.entropy[:, -COMPLETION_LEN:]
    (output.loss + (log_probs * 0.3).sum() + entropy.sum()).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return output.loss.detach(), log_probs.detach(), entropy.detach(), grads, positions


def test_shared_prompts_give_the_same_log_probs_loss_and_gradients(model_dir):
    batch = grpo_batch()
    loss, log_probs, entropy, grads, positions = fused_pass(model_dir, batch, shared=False)
    shared_loss, shared_log_probs, shared_entropy, shared_grads, shared_positions = fused_pass(model_dir, batch,
                                                                                               shared=True)
    torch.testing.assert_close(shared_loss, loss, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(shared_log_probs, log_probs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(shared_entropy, entropy, rtol=1e-5, atol=1e-5)
    assert (log_probs[batch[2][:, -COMPLETION_LEN:] == -100] == 0).all()
    for name, grad in grads.items():  # float32 summation order: within 1e-5 of each tensor's scale
        torch.testing.assert_close(shared_grads[name], grad, rtol=1e-5, atol=1e-5 * grad.abs().max().item(),
                                   msg=name)

    rows, width = batch[0].shape
    start = PROMPT_LEN - 1  # the last prompt token runs per row: it predicts the first completion token
    assert positions == [rows * width]
    assert shared_positions == [PROMPTS * start, rows * (width - start)]


def test_distinct_prompts_and_unknown_inputs_run_trls_forward(model_dir):
    batch = grpo_batch(generations=1)
    assert shared_prompt_plan(*batch) is None  # nothing to share: every row has its own prompt
    plain, wrapped = fused_pass(model_dir, batch, shared=False), fused_pass(model_dir, batch, shared=True)
    assert torch.equal(plain[0], wrapped[0]) and torch.equal(plain[1], wrapped[1]) and plain[4] == wrapped[4]

    batch = grpo_batch()
    position_ids = torch.arange(batch[0].shape[1])[None]
    plain = fused_pass(model_dir, batch, shared=False, position_ids=position_ids)
    wrapped = fused_pass(model_dir, batch, shared=True, position_ids=position_ids)
    assert torch.equal(plain[0], wrapped[0]) and torch.equal(plain[1], wrapped[1])
    assert wrapped[4] == [batch[0].numel()]  # an input it does not know: whole rows, as TRL runs them


def test_grpo_stage_shares_prompts_on_cpu_when_asked(tiny_model_dir, emotion_file, tmp_path, monkeypatch):
    def wrapped(**keys) -> bool:
        trainer = tiny_grpo_trainer(tiny_model_dir, emotion_file, tmp_path, **keys)
        return getattr(trainer.model.forward, "shares_prompts", False)

    assert wrapped()
    assert not wrapped(share_prompts=False)
    monkeypatch.setattr("affect_rl.hardware.cuda_available", lambda: True)  # on a GPU TRL's forward stays as shipped
    assert not wrapped()


# 8 ragged completions (2 prompts x 4), odd ones ended by EOS: their lengths, hence length rewards, differ.
RAGGED_COMPLETIONS = [[11 + row] * (2 + row % 5) + [2] * (row % 2) for row in range(8)]


def assert_same_gradients(model, reference):
    """Every parameter's gradient within 1e-5 (relative to the tensor's largest) of ``reference``'s."""
    reference_params = dict(reference.named_parameters())
    for name, param in model.named_parameters():
        grad = reference_params[name].grad
        torch.testing.assert_close(param.grad, grad, rtol=1e-5, atol=1e-5 * grad.abs().max().item(), msg=name)


def test_grpo_loss_and_gradients_match_trls_given_the_same_completions(tiny_model_dir, emotion_file, tmp_path):
    shared = tiny_grpo_trainer(tiny_model_dir, emotion_file, tmp_path / "a", **FIXED_COMPLETIONS)
    shipped = tiny_grpo_trainer(tiny_model_dir, emotion_file, tmp_path / "b", share_prompts=False, **FIXED_COMPLETIONS)
    rows = [shared.train_dataset[index] for index in (0, 1)]
    batch = [row for row in rows for _ in range(4)]
    inputs = []
    for trainer in (shared, shipped):
        trainer._generate_single_turn = lambda *args, **kwargs: (RAGGED_COMPLETIONS, None)
        inputs.append(trainer._generate_and_score_completions([dict(row) for row in batch]))

    positions = []
    shared.model.get_input_embeddings().register_forward_hook(
        lambda module, args, output: positions.append(args[0].shape))
    losses = []
    for trainer, trainer_inputs in zip((shared, shipped), inputs):
        loss = trainer.compute_loss(trainer.model, trainer_inputs)
        loss.backward()
        losses.append(loss.detach())
    prompt_width = inputs[0]["prompt_ids"].shape[1]
    assert positions == [(2, prompt_width - 1), (8, 1 + inputs[0]["completion_ids"].shape[1])]
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    assert inputs[0]["advantages"].abs().sum() > 0 and shared.model.lm_head.weight.grad.abs().sum() > 0
    assert_same_gradients(shared.model, shipped.model)


def test_shuffle_groups_moves_each_prompts_rows_together_in_a_random_order():
    prompts = torch.tensor([[5, 6], [7, 8], [5, 6], [9, 9], [7, 8], [9, 9]])  # groups A B A C B C
    batch = {"prompt_ids": prompts, "prompt_mask": torch.ones_like(prompts), "row": torch.arange(6),
             "text": list("abcdef"), "num_items_in_batch": torch.tensor(12), "old_per_token_logps": None}
    orders = set()
    for seed in range(8):
        torch.manual_seed(seed)
        shuffled = shuffle_groups(batch)
        rows = shuffled["row"].tolist()
        assert sorted(rows) == list(range(6)) and shuffled["text"] == ["abcdef"[row] for row in rows]
        assert torch.equal(shuffled["prompt_ids"], prompts[rows])
        pairs = [rows[i : i + 2] for i in (0, 2, 4)]  # each group's two rows side by side, in their order
        assert sorted(pairs) == [[0, 2], [1, 4], [3, 5]]
        assert shuffled["num_items_in_batch"] == 12 and shuffled["old_per_token_logps"] is None
        orders.add(tuple(rows))
    assert len(orders) > 1  # the groups' order is random


def test_grpo_micro_batches_hold_whole_groups_with_trls_gradients(tiny_model_dir, emotion_file, tmp_path):
    """A rollout of 2 prompts x 4 split into 2 micro-batches of one optimizer step: each micro-batch holds
    one prompt's completions and runs that prompt once; the summed gradients are TRL's."""
    keys = {**FIXED_COMPLETIONS, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2}
    grouped = tiny_grpo_trainer(tiny_model_dir, emotion_file, tmp_path / "a", **keys)
    shipped = tiny_grpo_trainer(tiny_model_dir, emotion_file, tmp_path / "b", share_prompts=False, **keys)
    rows = [grouped.train_dataset[index] for index in (0, 1)]
    positions = []
    grouped.model.get_input_embeddings().register_forward_hook(
        lambda module, args, output: positions.append(args[0].shape[0]))
    micro_batches = {}
    for name, trainer in (("grouped", grouped), ("shipped", shipped)):
        trainer._generate_single_turn = lambda *args, **kwargs: (RAGGED_COMPLETIONS, None)
        trainer.current_gradient_accumulation_steps = 2
        trainer.model.train()
        torch.manual_seed(1)  # the same shuffle draw for both
        micro_batches[name] = []
        for step in range(2):
            trainer._step = step
            inputs = trainer._prepare_inputs([dict(row) for row in rows for _ in range(4)])
            trainer.compute_loss(trainer.model, inputs).backward()
            micro_batches[name].append(inputs["prompt_ids"])
    assert all((prompts == prompts[:1]).all() for prompts in micro_batches["grouped"])
    assert not all((prompts == prompts[:1]).all() for prompts in micro_batches["shipped"])  # TRL's shuffle mixes
    assert positions == [1, 4, 1, 4]  # per micro-batch: the prompt once, then its 4 completions
    assert grouped.model.lm_head.weight.grad.abs().sum() > 0
    assert_same_gradients(grouped.model, shipped.model)


def test_sft_runs_the_common_system_turn_once_with_trls_loss_and_gradients(tiny_model_dir, emotion_file, tmp_path,
                                                                            monkeypatch):
    """SFT's right-padded rows of different prompts share the chat template's system turn."""
    from affect_rl import sft

    trainers = {}
    monkeypatch.setattr("affect_rl.sft.run_training", lambda trainer, cfg: trainers.setdefault(cfg.recipe.share_prompts,
                                                                                                 trainer))
    monkeypatch.setattr("affect_rl.sft.finish_stage", lambda *args: None)
    for share in (True, False):
        sft.run(tiny_recipe(tiny_model_dir, emotion_file, tmp_path / str(share), share_prompts=share, learning_rate=0.0))
    shared, shipped = trainers[True], trainers[False]
    assert getattr(shared.model.forward, "shares_prompts", False)
    assert not getattr(shipped.model.forward, "shares_prompts", False)

    batch = next(iter(shipped.get_train_dataloader()))
    width = batch["input_ids"].shape[1]
    system_turn = 42  # "<|im_start|>system\nThink briefly, then answer in this format: ...<|im_end|>\n"
    assert shared_prompt_plan(batch["input_ids"], batch["attention_mask"], batch["labels"])[0] == system_turn
    positions = []
    shared.model.get_input_embeddings().register_forward_hook(lambda module, args, output: positions.append(args[0].shape))
    losses = []
    for trainer in (shared, shipped):
        loss = trainer.compute_loss(trainer.model, {key: value.clone() for key, value in batch.items()})
        loss.backward()
        losses.append(loss.detach())
    assert positions == [(1, system_turn), (4, width - system_turn)]
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    assert_same_gradients(shared.model, shipped.model)
