"""Greedy generations on a few held-out prompts, printed after a stage to show what it learnt."""

from __future__ import annotations

import torch


@torch.no_grad()
def generate_samples(model, tokenizer, prompts: list[list[dict]], images: list[list] | None = None,
                     max_new_tokens: int = 96) -> list[str]:  # fmt: skip
    """Greedy completions of chat ``prompts`` (one at a time: these are a handful); ``tokenizer`` may
    be a VLM's processor, and ``images`` gives each prompt's images."""
    from transformers import ProcessorMixin

    from affect_rl.data.media import multimodal_prompt

    is_processor = isinstance(tokenizer, ProcessorMixin)
    text_tokenizer = tokenizer.tokenizer if is_processor else tokenizer
    was_training = model.training
    model.eval()
    completions = []
    for index, messages in enumerate(prompts):
        if is_processor:
            messages = multimodal_prompt(messages, images[index] if images else [])
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_tensors="pt", return_dict=True
        ).to(model.device)
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                pad_token_id=text_tokenizer.pad_token_id)
        completions.append(text_tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    model.train(was_training)
    return completions


def format_samples(prompts: list[list[dict]], completions: list[str], title: str) -> str:
    """A readable block: each prompt's user turn, then the completion."""
    lines = [f"── {title} ──"]
    for messages, completion in zip(prompts, completions):
        user_turn = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        lines += [f"PROMPT: {user_turn.strip()}", f"OUTPUT: {completion.strip()}", ""]
    return "\n".join(lines)
