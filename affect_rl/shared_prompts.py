"""Training forwards that run a prompt part shared by several rows once, not once per row (CPU).

TRL (1.16) computes the training log-probabilities with one forward (and backward) over prompt +
completion for each row. In GRPO the G rows of a prompt repeat the same prompt positions; in the
demo those are about 65% of the positions. In SFT the rows of a batch have different prompts but
share the chat template's system turn (42 of the demo's ~125 positions). The LM head already
skips prompt positions (``affect_rl.cpu_speedups``), but the transformer layers do not.

``share_prompt_forward(model)`` wraps the model's fused-LM-head forward (TRL's
``add_fused_lm_head``, which GRPO's and SFT's losses call with ``fused_lm_head=True``):

- rows whose shared part (ids and padding) is identical run it once, through the backbone with a
  KV cache (``shared_prompt_plan`` picks the part: GRPO's whole prompts, or the prefix common to
  every row);
- each row then runs its last prompt token and its completion on its prompt's cache
  (each row's copy of it), with the same positions and attention mask as the
  whole row would have.

Gradients flow back through the cache into the shared prompt computation, summed over its rows,
just as they sum when each row runs the prompt itself. The loss and gradients are therefore the
same up to floating-point summation order. ``tests/test_shared_prompts.py`` checks this in fp32,
within 1e-5, for GRPO's loss and SFT's.

Measured on the demo's SFT (10 steps of 8 rows, bf16 autocast, 2-core CPU), back to back: 29.2 /
31.4 s of training against 33.1 / 31.1 s without it (5-15% less over the runs made).

It applies only to calls it can serve exactly: text ids with an attention mask and labels, no
activation checkpointing, and a cache made only of full-attention layers (no sliding window or
linear layers). Any other call runs TRL's forward unchanged.

With gradient accumulation a GRPO rollout is split into micro-batches, and TRL shuffles its rows
first, so a micro-batch holds a few completions of many prompts: 16 rows drawn from 12 prompts x 4
hold about 9.8 distinct prompts, not 4. ``shuffle_whole_groups(trainer)`` makes that shuffle move
whole groups (a random order of prompts, each prompt's completions together). With
``steps_per_generation`` equal to ``gradient_accumulation_steps`` (TRL's default) every
micro-batch of a rollout feeds the same optimizer step, so the step is unchanged up to summation order.
Measured on the low-memory demo (3 micro-batches of 16, fp32, 2-core CPU), the GRPO stage alone: 398 s
against 498 s with TRL's shuffle.
"""

from __future__ import annotations

import functools
import types

import torch

from affect_rl.models import fused_head_model

_TEXT_ONLY_KWARGS = frozenset({"output_router_logits"})


def share_prompts_in(trainer) -> None:
    """Share prompts in the forward TRL gave its fused LM head: the trainer's model, or under a LoRA
    adapter its base model; in GRPO, keep each prompt's completions in one micro-batch."""
    from trl import GRPOTrainer

    share_prompt_forward(fused_head_model(trainer))
    if isinstance(trainer, GRPOTrainer):
        shuffle_whole_groups(trainer)


def share_prompt_forward(model) -> None:
    """Wrap ``model.forward`` (already given TRL's fused LM head) to run each distinct prompt once."""
    fused_forward = model.forward

    @functools.wraps(type(model).forward)  # generate reads the forward's parameters (e.g. position_ids)
    def forward(self, input_ids=None, attention_mask=None, labels=None, fused_lm_head=False, **kwargs):
        plan = None
        if fused_lm_head and set(kwargs) - {"use_cache"} <= _TEXT_ONLY_KWARGS and not self.is_activation_checkpointing:
            plan = shared_prompt_plan(input_ids, attention_mask, labels)
        if plan is None:
            return fused_forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                                 fused_lm_head=fused_lm_head, **kwargs)
        start, distinct, rows = plan
        kwargs.pop("use_cache", None)  # SFT's use_cache=False: no cache to keep; the prompt's is built here
        cache = prompt_cache(self, distinct[:, :start], distinct[:, start:], rows)
        if cache is None:
            return fused_forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                                 fused_lm_head=True, **kwargs)
        # Positions continue after the cached prompt (start, start + 1, ...), as in the whole row.
        return fused_forward(input_ids=input_ids[:, start:], attention_mask=attention_mask, labels=labels[:, start:],
                             cache=cache, fused_lm_head=True, **kwargs)

    forward.shares_prompts = True  # marks a wrapped forward
    model.forward = types.MethodType(forward, model)


def shared_prompt_plan(input_ids, attention_mask, labels) -> tuple[int, torch.Tensor, torch.Tensor] | None:
    """``(start, distinct, rows)``: the rows' shared part is columns ``[0, start)``, ``distinct`` holds
    each distinct shared part's ids and mask side by side, and ``rows`` maps every row to its
    distinct part. None when no two rows share a part.

    Two kinds of sharing, whichever saves more positions:

    - GRPO's groups: the whole prompt (all but the token before the first labelled column, which
      predicts it), identical in the ``num_generations`` rows of a prompt;
    - a prefix common to every row, the same ids and mask column by column: the chat template's
      system turn in SFT's right-padded rows of different prompts.
    """
    if input_ids is None or attention_mask is None or labels is None or input_ids.dim() != 2:
        return None
    labelled_columns = (labels != -100).any(dim=0).nonzero()
    if len(labelled_columns) == 0 or int(labelled_columns[0]) < 2:
        return None
    start = int(labelled_columns[0]) - 1  # the token before the first label predicts it: run it per row
    shared = torch.cat([input_ids[:, :start], attention_mask[:, :start].to(input_ids.dtype)], dim=1)
    distinct, rows = torch.unique(shared, dim=0, return_inverse=True)
    same_column = ((input_ids == input_ids[:1]) & (attention_mask == attention_mask[:1])).all(dim=0)[:start]
    common = int(same_column.int().cumprod(dim=0).sum())
    if common * (len(input_ids) - 1) > start * (len(input_ids) - len(distinct)):
        start, rows = common, torch.zeros_like(rows)
        distinct = torch.cat([input_ids[:1, :common], attention_mask[:1, :common].to(input_ids.dtype)], dim=1)
    if len(distinct) == len(input_ids):
        return None
    return start, distinct, rows


def prompt_cache(model, input_ids, attention_mask, rows):
    """The KV cache of each distinct prompt part, with gradients, selected for each row; None
    for a model whose cache has other than full-attention layers."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    if not all(type(layer) is DynamicLayer for layer in cache.layers):
        return None
    getattr(model, model.base_model_prefix)(input_ids=input_ids, attention_mask=attention_mask, cache=cache,
                                            use_cache=True)
    for layer in cache.layers:
        layer.keys, layer.values = _SelectRows.apply(layer.keys, rows), _SelectRows.apply(layer.values, rows)
    return cache


class _SelectRows(torch.autograd.Function):
    """``source[rows]``, whose gradient sums each source row's copies one source row at a time.
    Indexing's own backward accumulates with a parallel ``index_put_`` on CPU, whose order of
    additions varies from run to run: SFT's weights then differed between two identical runs."""

    @staticmethod
    def forward(ctx, source, rows):
        ctx.save_for_backward(rows)
        ctx.num_sources = source.shape[0]
        return source[rows]

    @staticmethod
    def backward(ctx, grad):
        (rows,) = ctx.saved_tensors
        return torch.stack([grad[rows == source].sum(dim=0) for source in range(ctx.num_sources)]), None


def shuffle_whole_groups(trainer) -> None:
    """Patch ``trainer`` (a ``GRPOTrainer``) so that the shuffle before each rollout is split into
    micro-batches moves whole groups; nothing to do with one micro-batch a rollout."""
    if trainer.args.steps_per_generation == 1:
        return
    import trl.trainer.grpo_trainer as grpo_trainer

    prepare_inputs = trainer._prepare_inputs

    @functools.wraps(prepare_inputs)
    def prepare_inputs_shuffling_groups(*args, **kwargs):
        shuffle, grpo_trainer.shuffle_sequence_dict = grpo_trainer.shuffle_sequence_dict, shuffle_groups
        try:
            return prepare_inputs(*args, **kwargs)
        finally:
            grpo_trainer.shuffle_sequence_dict = shuffle

    trainer._prepare_inputs = prepare_inputs_shuffling_groups


def shuffle_groups(batch: dict) -> dict:
    """TRL's ``shuffle_sequence_dict`` for a GRPO rollout, by group: the rows with the same prompt
    (``prompt_ids`` and ``prompt_mask``) move together, the groups in a random order (``torch.randperm``,
    as TRL's), each group's rows in their order."""
    prompts = torch.cat([batch["prompt_ids"], batch["prompt_mask"].to(batch["prompt_ids"].dtype)], dim=1)
    _, group = torch.unique(prompts, dim=0, return_inverse=True)
    group_rank = torch.randperm(int(group.max()) + 1)[group]
    order = torch.sort(group_rank, stable=True).indices

    def permute(value):
        if value is None or (isinstance(value, torch.Tensor) and value.ndim == 0):
            return value
        return value[order] if isinstance(value, torch.Tensor) else [value[i] for i in order]

    return {key: permute(value) for key, value in batch.items()}
