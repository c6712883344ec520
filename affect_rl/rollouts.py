"""Faster GRPO rollouts on CPU: sample from a bf16 copy of the policy and prefill each prompt once.

TRL (1.16) samples GRPO completions with HF ``generate`` on the training model. On a CPU under
bf16 autocast, every forward casts the fp32 weights to bf16 again, and decoding runs one forward
per new token; and each prompt is prefilled once per completion, G times per group.

``CpuRollouts`` plugs into TRL's ``rollout_func`` hook and changes only that:

- it samples from a bf16 copy of the policy: weights cast once, copied again from the policy at
  the first rollout after each optimizer step. Without bf16 autocast, or with a LoRA adapter,
  it samples from the policy itself;
- it prefills each distinct prompt once (all but its last token) and gives each of the prompt's
  completions the prompt's KV cache (``DynamicCache.batch_select_indices``); ``generate`` then
  runs the last prompt token and the decoding steps;
- it draws each token by inverting the cumulative distribution (``draw_tokens``) instead of
  ``torch.multinomial``, which takes 21 ms for 16 rows of SmolLM2's 49,152-token vocabulary on
  this CPU, a third of a decoding step; the inverse takes 0.8 ms. Both draw from the same
  distribution (the softmax of the processed scores), with different random streams.

The rest is TRL's. The prompt ids come from ``GRPOTrainer._tokenize_prompts``. Sampling uses
the trainer's ``GenerationConfig`` (temperature, top-p/k, min-p, repetition penalty,
max_completion_length, EOS ids). Completion ids are cut after the first EOS exactly as
``_generate_single_turn`` cuts them, so rewards, ``completions/clipped_ratio`` and
``mask_truncated_completions`` see what TRL would produce. TRL computes the loss on the training
model as before. ``tests/test_rollouts.py`` checks this: identical samples to TRL's at one seed
in fp32, and identical loss and gradients given the same completions.

The bf16 copy does not give bit-identical logits to fp32 weights under autocast (its residual
stream is bf16), so sampling follows a slightly different policy than the one trained, as vLLM
rollouts do on GPUs (TRL corrects for that only with vLLM). ``bench/rollout_speed.py`` prints the
mean per-token log-probability gap on sampled tokens.

Measured (``python bench/rollout_speed.py``; see the README for the table): SmolLM2-135M, 4
prompts x 4 completions (issue 14's batch, which the bench keeps), 48 new tokens, 2-core CPU with
avx512_bf16.

Used only on CPUs, without vLLM, continuous batching or a multimodal processor, and never under
DeepSpeed or FSDP (their engines own the weights; ZeRO-3 and FSDP shard them, so neither a copy
nor a shared prefill may bypass them): on GPUs TRL's own paths (vLLM above all) are the fast ones.
"""

from __future__ import annotations

import contextlib
import copy
import logging

import torch

logger = logging.getLogger(__name__)


def cpu_rollouts(training_args, processing_class) -> CpuRollouts | None:
    """The ``rollout_func`` for a GRPO run, or None where TRL's own generation is used."""
    from transformers import ProcessorMixin

    from affect_rl.hardware import cpu_speedups_apply

    if (not cpu_speedups_apply(training_args) or training_args.use_vllm
            or training_args.use_transformers_continuous_batching):
        return None
    if isinstance(processing_class, ProcessorMixin):  # images travel beside the prompt ids: TRL's path
        return None
    return CpuRollouts()


class CpuRollouts:
    """``rollout_func(prompts, trainer)`` for ``GRPOTrainer``: one completion per prompt received
    (TRL passes each prompt once per generation), returned as TRL's own path returns them."""

    def __init__(self):
        self.sampler = None  # the bf16 copy, built at the first rollout
        self.synced_step = None  # trainer.state.global_step the copy was last synced at

    def __call__(self, prompts: list, trainer) -> dict:
        prompt_ids, _, _ = trainer._tokenize_prompts(prompts)
        model = self.sampling_model(trainer)
        if model is None:  # sample from the policy itself, as TRL does (autocast, if any, included)
            from trl.models import unwrap_model_for_generation

            with unwrap_model_for_generation(
                trainer.model_wrapped, trainer.accelerator, generation_kwargs=trainer.generation_kwargs,
                gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
            ) as policy:
                completion_ids = sample_completions(policy, prompt_ids, trainer.generation_config,
                                                    trainer.eos_token_ids, trainer._tokenizer.pad_token_id)
        else:
            completion_ids = sample_completions(model, prompt_ids, trainer.generation_config,
                                                trainer.eos_token_ids, trainer._tokenizer.pad_token_id)
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": None}

    def sampling_model(self, trainer):
        """The bf16 copy of the policy, synced with it; None where the policy samples itself
        (no bf16 autocast, or a PEFT adapter whose weights are not merged)."""
        policy = trainer.accelerator.unwrap_model(trainer.model)
        if not trainer.args.bf16 or hasattr(policy, "peft_config"):
            return None
        if self.sampler is None:
            self.sampler = bf16_copy(policy)
        if self.synced_step != trainer.state.global_step:
            with torch.no_grad():
                self.sampler.load_state_dict(policy.state_dict())
            self.synced_step = trainer.state.global_step
        return self.sampler


def bf16_copy(policy):
    """A bf16 model of the policy's class and config, for inference (weights loaded by the caller)."""
    from transformers import AutoModelForCausalLM

    # from_config writes the dtype into the config it is given: give it its own.
    sampler = AutoModelForCausalLM.from_config(copy.deepcopy(policy.config), dtype=torch.bfloat16)
    sampler.generation_config = copy.deepcopy(policy.generation_config)
    return sampler.eval().requires_grad_(False)


@torch.no_grad()
def sample_completions(model, prompt_ids: list[list[int]], generation_config, eos_token_ids: list[int],
                       pad_token_id: int) -> list[list[int]]:
    """One sampled completion per prompt, each cut after its first EOS token (kept), as TRL does.

    Repeated prompts share one prefill: each distinct prompt but its last token runs once and its
    KV cache is copied to every row that repeats it.
    """
    distinct = list(dict.fromkeys(map(tuple, prompt_ids)))
    row_of = {prompt: row for row, prompt in enumerate(distinct)}
    rows = torch.tensor([row_of[tuple(ids)] for ids in prompt_ids], device=model.device)
    input_ids, attention_mask = left_pad(distinct, pad_token_id, model.device)
    generate_kwargs = {}
    if input_ids.shape[1] > 1 and generation_config.cache_implementation in (None, "dynamic"):
        generate_kwargs["cache"] = prefill(model, input_ids[:, :-1], attention_mask[:, :-1])
        generate_kwargs["cache"].batch_select_indices(rows)
    with inverse_cdf_sampling():
        output = model.generate(input_ids=input_ids[rows], attention_mask=attention_mask[rows],
                                generation_config=generation_config, **generate_kwargs)
    return cut_after_first_eos(output[:, input_ids.shape[1]:], eos_token_ids)


@contextlib.contextmanager
def inverse_cdf_sampling():
    """Within the block, ``torch.multinomial(probs, 1)`` on a 2-D ``probs`` (the call ``generate``
    makes for each sampled token) is ``draw_tokens(probs)[:, None]``; every other call is torch's.
    ``generate`` has no hook for the draw, so the block swaps torch's function while it runs, and
    puts it back however the block ends."""
    multinomial = torch.multinomial

    def draw(input, num_samples, replacement=False, *, generator=None, out=None):
        if num_samples != 1 or input.dim() != 2 or generator is not None or out is not None:
            return multinomial(input, num_samples, replacement, generator=generator, out=out)
        return draw_tokens(input)[:, None]

    torch.multinomial = draw
    try:
        yield
    finally:
        torch.multinomial = multinomial


def draw_tokens(probs: torch.Tensor) -> torch.Tensor:
    """One index per row of ``probs`` (rows of non-negative weights), index i with probability
    ``probs[i] / probs.sum()``: the first i whose cumulative sum exceeds u ~ U[0, sum).

    The sums are in float64, so every token keeps its own interval, however small its
    probability (in float32 those under ~1e-7 would merge into their neighbours'). A token of
    probability 0 has an empty interval and is never drawn.

    >>> draw_tokens(torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]]))
    tensor([1, 2])
    """
    cdf = probs.cumsum(-1, dtype=torch.float64)
    totals = cdf[:, -1:]
    if not (torch.isfinite(totals) & (totals > 0)).all():
        raise ValueError("the sampler's next-token probabilities hold inf or nan (rows must be finite with a positive "
                         "sum): the policy diverged; lower the learning rate or resume from an earlier checkpoint")
    thresholds = torch.rand(totals.shape, dtype=torch.float64, device=probs.device) * totals
    return torch.searchsorted(cdf, thresholds, right=True).squeeze(1).clamp_(max=probs.shape[-1] - 1)


def prefill(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache=None):
    """The KV cache of left-padded ``input_ids``, with the positions ``generate`` gives them (each
    token's count of unmasked tokens before it). Given a ``cache``, the ids extend it, and
    ``attention_mask`` covers the cached columns and then the ids'."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config) if cache is None else cache
    position_ids = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids[:, -input_ids.shape[1]:],
          cache=cache, use_cache=True, logits_to_keep=1)  # fmt: skip
    return cache


def left_pad(sequences, pad_token_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and their attention mask.

    >>> left_pad([(5, 6), (7,)], 0, "cpu")
    (tensor([[5, 6],
            [0, 7]]), tensor([[1, 1],
            [0, 1]]))
    """
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long, device=device)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long, device=device)
    for row, ids in enumerate(sequences):
        if ids:
            input_ids[row, width - len(ids):] = torch.tensor(ids, device=device)
            attention_mask[row, width - len(ids):] = 1
    return input_ids, attention_mask


def cut_after_first_eos(completions: torch.Tensor, eos_token_ids: list[int]) -> list[list[int]]:
    """Each row up to and including its first EOS token; a row without one is kept whole (it was
    truncated at max_completion_length). The same rule as TRL's ``_generate_single_turn``.

    >>> cut_after_first_eos(torch.tensor([[4, 2, 9, 0], [4, 5, 6, 7]]), [2])
    [[4, 2], [4, 5, 6, 7]]
    """
    is_eos = torch.isin(completions, torch.tensor(eos_token_ids, device=completions.device))
    ends = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1) + 1, completions.shape[1])
    return [row[:end].tolist() for row, end in zip(completions.cpu(), ends.tolist())]
