"""Greedy decoding that drops each row from the batch as soon as it ends.

HF ``generate`` keeps a finished row in the batch, feeding it padding, until the last row ends or
``max_new_tokens`` is reached. In the demo's eval, completions average 32 tokens against a 48-token
cap, so about a third of the decoding work went to rows that had already ended. Here every step
runs only the rows still decoding: their KV cache, attention mask and positions are cut down with
the rest of the batch (``DynamicCache.batch_select_indices``).

The tokens are ``generate``'s greedy ones: the same prefill positions, the same logits processors
(``generate``'s own, built from the model's generation config merged with the one given, e.g. a
repetition penalty, and rebuilt for the remaining rows whenever some leave), and argmax. Only the batch a row shares its matrix products with changes, so
in fp32 a near-tie can rarely round the other way.
"""

from __future__ import annotations

import torch

from affect_rl.rollouts import prefill


@torch.inference_mode()
def greedy_decode(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, generation_config,
                  eos_token_ids: list[int]) -> list[list[int]]:
    """Each left-padded row's greedy completion, up to and including its first EOS token, or
    ``generation_config.max_new_tokens`` tokens when it has none (it was truncated)."""
    from transformers import DynamicCache

    config, _ = model._prepare_generation_config(generation_config)

    def logits_processors(mask):
        # Built for the rows in the batch: some keep a value per row (the repetition penalty skips
        # each row's left padding), so they are built again whenever rows leave.
        return model._get_logits_processor(config, input_ids_seq_length=input_ids.shape[1], device=input_ids.device,
                                           model_kwargs={"attention_mask": mask})  # fmt: skip

    processors = logits_processors(attention_mask)
    eos = torch.tensor(eos_token_ids, device=input_ids.device)
    # All but the last prompt token fill the cache; the last one is the first decoding step's input.
    cache = (prefill(model, input_ids[:, :-1], attention_mask[:, :-1]) if input_ids.shape[1] > 1
             else DynamicCache(config=model.config))  # fmt: skip
    positions = attention_mask.long().sum(-1, keepdim=True) - 1
    sequences, mask, step_input = input_ids, attention_mask, input_ids[:, -1:]
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
            rows, tokens, sequences, mask, positions = (t[keep] for t in (rows, tokens, sequences, mask, positions))
            processors = logits_processors(mask)
        step_input = tokens[:, None]
        sequences = torch.cat([sequences, step_input], dim=1)
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        positions = positions + 1
    return completions
