"""Greedy decoding for the eval: the prompts' common prefix runs once, and each row leaves the
batch as soon as it ends.

Prefill was about half of the demo eval's generation time. The prompts of a chat template share
its system turn (42 of the demo's ~88 prompt tokens), which ``generate`` runs once per row; here
it runs once per batch (``prefill_sharing_prefix``).

HF ``generate`` also keeps a finished row in the batch, feeding it padding, until the last row
ends or ``max_new_tokens`` is reached: 22% of its row-steps in the demo's eval (completions
average 32 tokens against a 48-token cap). Here every step runs only the rows still decoding:
their KV cache, attention mask and positions are cut down with the rest of the batch
(``DynamicCache.batch_select_indices``).

Measured on the demo's 286 test prompts in fp32 at batch 96 (``python bench/eval_decoding.py
--model runs/demo/sft``, 2-core CPU): 60 s against ``generate``'s 92 s, all 286 completions
identical.

The tokens are ``generate``'s greedy ones: the same positions and attention, the same logits
processors (``generate``'s own, built from the model's generation config merged with the one
given, e.g. a repetition penalty, and rebuilt for the remaining rows whenever some leave), and
argmax. Only the order of floating-point sums changes (the prefix's cache is computed apart, and
rows share their matrix products with fewer rows), so a near-tie can rarely round the other way.
"""

from __future__ import annotations

import torch

from affect_rl.rollouts import left_pad, prefill


@torch.inference_mode()
def greedy_decode(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, generation_config,
                  eos_token_ids: list[int]) -> list[list[int]]:
    """Each left-padded row's greedy completion, up to and including its first EOS token, or
    ``generation_config.max_new_tokens`` tokens when it has none (it was truncated)."""
    config, _ = model._prepare_generation_config(generation_config)

    def logits_processors(prompt_mask):
        # Built for the rows in the batch: some keep a value per row (the repetition penalty skips
        # each row's left padding), so they are built again whenever rows leave.
        return model._get_logits_processor(config, input_ids_seq_length=input_ids.shape[1], device=input_ids.device,
                                           model_kwargs={"attention_mask": prompt_mask})  # fmt: skip

    eos = torch.tensor(eos_token_ids, device=input_ids.device)
    cache, mask, step_input = prefill_sharing_prefix(model, input_ids, attention_mask)
    positions = attention_mask.long().sum(-1, keepdim=True) - 1
    # The processors see the rows as generate does: the left-padded prompt and the tokens so far.
    sequences, prompt_mask = input_ids, attention_mask
    processors = logits_processors(prompt_mask)
    rows = torch.arange(input_ids.shape[0], device=input_ids.device)
    completions = [[] for _ in range(input_ids.shape[0])]
    for step in range(config.max_new_tokens):
        logits = model(input_ids=step_input, attention_mask=mask, position_ids=positions, cache=cache,
                       use_cache=True).logits[:, -1].float()  # fmt: skip
        tokens = processors(sequences, logits).argmax(-1)
        for row, token in zip(rows.tolist(), tokens.tolist()):
            completions[row].append(token)
        running = ~torch.isin(tokens, eos)
        if step + 1 == config.max_new_tokens or not running.any():
            break
        if not running.all():
            keep = running.nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            rows, tokens, sequences, prompt_mask, mask, positions = (
                t[keep] for t in (rows, tokens, sequences, prompt_mask, mask, positions))
            processors = logits_processors(prompt_mask)
        step_input = tokens[:, None]
        sequences = torch.cat([sequences, step_input], dim=1)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        positions = positions + 1
    return completions


def prefill_sharing_prefix(model, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    """The KV cache of every left-padded prompt but its last token, the attention mask of that
    cache plus the last token, and the last tokens (one column).

    The rows' longest common prefix runs once and its cache is copied to every row; each row's
    rest runs on top of it. The cache's columns are therefore [prefix][padding][rest], which
    gives each token the position and context it has in the left-padded row, since positions
    count only unmasked tokens. Rows of a chat template share its system turn (42 of the demo's
    ~88 prompt tokens).
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    lengths = attention_mask.long().sum(-1).tolist()
    prompts = [ids[len(ids) - length :] for ids, length in zip(input_ids.tolist(), lengths)]
    shared = 0
    if all(type(layer) is DynamicLayer for layer in cache.layers):  # no sliding-window or linear layers
        # Every row keeps at least its last token, the first decoding step's input.
        shared = _common_prefix_length(prompts, limit=min(lengths) - 1)
    if shared:
        prefix = input_ids.new_tensor(prompts[0][:shared])[None]
        prefill(model, prefix, torch.ones_like(prefix), cache)
        cache.batch_repeat_interleave(input_ids.shape[0])
    rest_ids, rest_mask = left_pad([ids[shared:] for ids in prompts], model.config.pad_token_id or 0,
                                   input_ids.device)  # fmt: skip
    mask = torch.cat([rest_mask.new_ones((len(prompts), shared)), rest_mask], dim=1)
    if rest_ids.shape[1] > 1:
        prefill(model, rest_ids[:, :-1], mask[:, :-1], cache)
    return cache, mask, rest_ids[:, -1:]


def _common_prefix_length(sequences: list[list[int]], limit: int) -> int:
    """How many leading tokens all ``sequences`` share, at most ``limit``.

    >>> _common_prefix_length([[1, 2, 3], [1, 2, 4]], limit=5)
    2
    """
    length = 0
    while length < limit and all(ids[length] == sequences[0][length] for ids in sequences):
        length += 1
    return length
