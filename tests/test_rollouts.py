"""CPU rollouts (affect_rl/rollouts.py): the same samples, truncation flags, loss and gradients as
TRL's own generation path, on a tiny random Llama with SmolLM2's tokenizer."""

import contextlib

import pytest
import torch
from tiny_recipes import A_FEW_STEPS, tiny_grpo_trainer

from affect_rl import rollouts

SETTINGS = {**A_FEW_STEPS, "learning_rate": 1e-2, "max_steps": 2}


def build(peaked_model_dir, data_file, output_dir, **extra):
    return tiny_grpo_trainer(peaked_model_dir, data_file, output_dir, **{**SETTINGS, **extra})


def generation_batch(trainer) -> list[dict]:
    """Four distinct prompts, each num_generations times in a row, as TRL's sampler hands them."""
    rows = [trainer.train_dataset[index] for index in range(4)]
    return [row for row in rows for _ in range(trainer.num_generations)]


def trl_generate(trainer, prompts, seed):
    """TRL's own generation path on the same trainer (the rollout hook switched off)."""
    hook, trainer.rollout_func = trainer.rollout_func, None
    try:
        torch.manual_seed(seed)
        return trainer._generate(prompts)
    finally:
        trainer.rollout_func = hook


def test_fast_rollouts_sample_what_trl_samples(peaked_model_dir, emotion_file, tmp_path, eos_bias, monkeypatch):
    # fp32 (no bf16 copy): the shared prefill and the EOS cut alone, against TRL at the same seed.
    # torch.multinomial draws the tokens, as in TRL, so the random streams agree; the inverse-CDF
    # draw is checked on its own below (same distribution, another stream).
    trainer = build(peaked_model_dir, emotion_file, tmp_path, generation_kwargs=eos_bias)
    assert isinstance(trainer.rollout_func, rollouts.CpuRollouts)
    prompts = [row["prompt"] for row in generation_batch(trainer)]
    prefilled = []
    prefill = rollouts.prefill
    monkeypatch.setattr(rollouts, "prefill", lambda model, ids, mask: prefilled.append(len(ids)) or prefill(model, ids, mask))
    monkeypatch.setattr(rollouts, "inverse_cdf_sampling", contextlib.nullcontext)

    for seed in (0, 1):
        torch.manual_seed(seed)
        prompt_ids, completion_ids, *_ = trainer._generate(prompts)
        trl_prompt_ids, trl_completion_ids, *_ = trl_generate(trainer, prompts, seed)
        assert prompt_ids == trl_prompt_ids
        assert completion_ids == trl_completion_ids

    assert prefilled == [4, 4]  # each of the 4 distinct prompts prefilled once, not once per completion
    eos = set(trainer.eos_token_ids)
    ended = [ids for ids in completion_ids if ids[-1] in eos]
    truncated = [ids for ids in completion_ids if ids[-1] not in eos]
    assert ended and truncated  # both kinds were compared
    assert all(len(ids) == 12 for ids in truncated)
    assert all(not eos & set(ids[:-1]) for ids in ended)  # cut right after the first EOS
    assert len({len(ids) for ids in prompt_ids}) > 1  # prompts of several lengths: left padding was exercised


def test_same_completions_give_trl_loss_and_gradients(peaked_model_dir, emotion_file, tmp_path, eos_bias):
    """The bf16 rollout path changes how completions are produced and nothing else: given the same
    completions, TRL's path yields the same batch, loss and gradient of every parameter."""
    settings = {"bf16": True, "mask_truncated_completions": True, "generation_kwargs": eos_bias,
                "share_prompts": False}  # the loss exactly as TRL computes it (see test_shared_prompts.py)
    fast = build(peaked_model_dir, emotion_file, tmp_path / "fast", **settings)
    shipped = build(peaked_model_dir, emotion_file, tmp_path / "trl", fast_rollouts=False, **settings)
    assert shipped.rollout_func is None
    batch = generation_batch(fast)

    sampled = []
    hook = fast.rollout_func

    def recording_hook(prompts, trainer):
        output = hook(prompts, trainer)
        sampled.append(output["completion_ids"])
        return output

    fast.rollout_func = recording_hook
    torch.manual_seed(0)
    fast_inputs = fast._generate_and_score_completions([dict(row) for row in batch])
    assert hook.sampler is not None and hook.sampler.dtype == torch.bfloat16  # the bf16 copy sampled them
    shipped._generate_single_turn = lambda *args, **kwargs: (sampled[0], None)
    trl_inputs = shipped._generate_and_score_completions([dict(row) for row in batch])

    assert fast_inputs.keys() == trl_inputs.keys()
    for key, value in fast_inputs.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(value, trl_inputs[key], rtol=0, atol=0, msg=key)
    assert fast.model.dtype == torch.float32 and fast.model.config.dtype == shipped.model.config.dtype

    losses = []
    for trainer, inputs in ((fast, fast_inputs), (shipped, trl_inputs)):
        with trainer.compute_loss_context_manager():
            loss = trainer.compute_loss(trainer.model, inputs)
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=0)
    shipped_params = dict(shipped.model.named_parameters())
    for name, param in fast.model.named_parameters():
        assert param.grad is not None, name
        torch.testing.assert_close(param.grad, shipped_params[name].grad, rtol=0, atol=0, msg=name)


def test_bf16_copy_is_synced_with_the_policy_at_each_rollout(peaked_model_dir, emotion_file, tmp_path, eos_bias):
    # Completions of varied length, so the length reward varies and the policy moves.
    trainer = build(peaked_model_dir, emotion_file, tmp_path, bf16=True, max_steps=3, generation_kwargs=eos_bias)
    hook = trainer.rollout_func
    gaps, steps = [], []

    def checking_hook(prompts, trainer):
        output = hook(prompts, trainer)
        policy = trainer.accelerator.unwrap_model(trainer.model)
        sampler = dict(hook.sampler.named_parameters())
        gaps.append(max((sampler[name] - p.detach().to(torch.bfloat16)).abs().max().item()
                        for name, p in policy.named_parameters()))
        steps.append(trainer.state.global_step)
        return output

    trainer.rollout_func = checking_hook
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.train()
    assert steps == [0, 1, 2] and gaps == [0.0, 0.0, 0.0]
    assert any(not torch.equal(before[name], p) for name, p in trainer.model.named_parameters())
    assert trainer.model.dtype == torch.float32


def test_fast_rollouts_stay_off_where_trl_is_faster(monkeypatch):
    from transformers import ProcessorMixin
    from trl import GRPOConfig

    args = GRPOConfig(output_dir="unused", use_cpu=True, report_to="none")
    assert isinstance(rollouts.cpu_rollouts(args, object()), rollouts.CpuRollouts)
    assert rollouts.cpu_rollouts(args, ProcessorMixin.__new__(ProcessorMixin)) is None
    args.use_vllm = True
    assert rollouts.cpu_rollouts(args, object()) is None
    args.use_vllm = False
    monkeypatch.setattr("affect_rl.hardware.cuda_available", lambda: True)
    assert rollouts.cpu_rollouts(args, object()) is None


@pytest.mark.parametrize("settings, environment, engine", [
    ({}, {}, None),
    ({"deepspeed": "launch/deepspeed/zero3.json"}, {}, "DeepSpeed"),
    ({}, {"ACCELERATE_USE_DEEPSPEED": "true"}, "DeepSpeed"),  # accelerate launch --config_file zero2.yaml
    ({}, {"ACCELERATE_USE_FSDP": "true"}, "FSDP"),  # accelerate launch --config_file fsdp.yaml
])
def test_cpu_speedups_leave_deepspeed_and_fsdp_runs_to_trl(settings, environment, engine, monkeypatch):
    from types import SimpleNamespace

    from affect_rl.hardware import sharded_training

    monkeypatch.setattr("affect_rl.hardware.cuda_available", lambda: False)
    for name in ("ACCELERATE_USE_DEEPSPEED", "ACCELERATE_USE_FSDP"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    args = SimpleNamespace(**({"deepspeed": None, "fsdp": None, "use_vllm": False,
                               "use_transformers_continuous_batching": False} | settings))
    assert sharded_training(args) == engine
    made = rollouts.cpu_rollouts(args, object())
    assert (made is None) == (engine is not None)


@pytest.mark.parametrize("rows, eos, expected", [
    ([[5, 2, 2, 0]], [2], [[5, 2]]),  # the first EOS is kept, what follows is dropped
    ([[5, 6, 7, 8]], [2], [[5, 6, 7, 8]]),  # no EOS: truncated at max_completion_length
    ([[9, 3, 1, 1]], [2, 3], [[9, 3]]),  # any of several EOS ids
    ([[2, 5, 6, 7]], [2], [[2]]),  # an EOS first: a one-token completion
])
def test_cut_after_first_eos(rows, eos, expected):
    assert rollouts.cut_after_first_eos(torch.tensor(rows), eos) == expected


def test_draw_tokens_follows_the_distribution():
    # 3 rows of weights over 6 tokens, zeros included and rows not summing to 1; 40,000 draws each.
    weights = torch.tensor([[0.5, 0.0, 0.25, 0.125, 0.125, 0.0],
                            [0.0, 0.0, 0.0, 0.0, 0.0, 3.0],
                            [1e-3, 2.0, 0.0, 1.0, 0.999, 0.0]])
    torch.manual_seed(0)
    draws = rollouts.draw_tokens(weights.repeat_interleave(40_000, dim=0)).view(3, 40_000)
    counts = torch.stack([torch.bincount(row, minlength=6) for row in draws]).double()
    expected = weights.double() / weights.double().sum(-1, keepdim=True)
    assert counts[weights == 0].sum() == 0  # a zero-probability token is never drawn
    # within 5 standard errors of each token's probability
    assert ((counts / 40_000 - expected).abs() <= 5 * (expected * (1 - expected) / 40_000).sqrt() + 1e-12).all()
    assert counts[2, 0] > 0  # a 1/4000 token still gets drawn


def test_draw_tokens_refuses_nan_and_empty_rows():
    for probs in (torch.tensor([[0.5, float("nan")]]), torch.tensor([[0.0, 0.0]])):
        with pytest.raises(ValueError, match="finite with a positive sum"):
            rollouts.draw_tokens(probs)


def test_inverse_cdf_sampling_swaps_only_generates_call_and_restores_torch():
    multinomial = torch.multinomial
    probs = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(RuntimeError, match="boom"), rollouts.inverse_cdf_sampling():
        assert torch.multinomial is not multinomial
        assert torch.multinomial(probs, num_samples=1).tolist() == [[1], [2]]
        torch.manual_seed(0)
        several = torch.multinomial(probs.repeat(1, 2), 2)  # two samples per row: torch's own
        torch.manual_seed(0)
        assert torch.equal(several, multinomial(probs.repeat(1, 2), 2))
        raise RuntimeError("boom")
    assert torch.multinomial is multinomial
