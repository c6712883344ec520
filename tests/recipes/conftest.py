"""Fixtures of the recipe tests: the repository root as working folder, and tiny models that answer.

A randomly initialised model never writes a template, so every pass rate of a ``select`` stage is 0
and a selection (``keep``, ``easy``) is empty. ``answering_model(prompts, answers)`` trains the tiny
Llama, in seconds, to answer any of ``prompts`` with one of ``answers`` at equal odds: a stand-in for
a model that is right on some rows some of the time, so pass rates spread over (0, 1).
"""

from __future__ import annotations

import json
import math

import pytest
from recipe_runs import REPO


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread for these modules (restored after each): the tiny model's matrices are too small
    to gain from a second one, and on a shared CPU its spin-waits made a training step 20x slower (0.1 s -> 2 s)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def in_repo(monkeypatch):
    """Run from the repository root, as the CPU recipes' commands are documented."""
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture()
def eval_images(monkeypatch):
    """The images each eval generation was given (one list per call: per prompt, its image values): the
    image recipes' rows reach the model, not just their text."""
    from affect_rl import generation

    seen: list = []
    generate = generation.generate_completions

    def recording(model, prompts, *args, images=None, **kwargs):
        seen.append(images)
        return generate(model, prompts, *args, images=images, **kwargs)

    monkeypatch.setattr(generation, "generate_completions", recording)
    return seen


@pytest.fixture(scope="session")
def answering_model(tmp_path_factory, tiny_model_dir):
    """``answering_model(prompts, answers)`` -> the folder of a tiny Llama that answers each prompt with one
    of ``answers`` (whole completions), at equal odds, once trained (cached per arguments).

    Only the answers' tokens get output weights: the other ~49k rows of the untied LM head are 0, so
    training with their logits fixed at 0 (one pooled class, log(V - K)) is the full softmax of the
    saved model, at the cost of K classes. 120 Adam steps take about 10 s on one CPU thread.
    """
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    built: dict = {}

    def build(prompts: list[list[dict]], answers: tuple[str, ...]) -> str:
        prompts = prompts[:8]  # the cue is the end of the chat template: a few prompts teach it for all
        key = (json.dumps(prompts, sort_keys=True), answers)
        if key in built:
            return built[key]
        tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
        torch.manual_seed(0)
        model = LlamaForCausalLM.from_pretrained(tiny_model_dir, tie_word_embeddings=False)
        model.lm_head.weight.data = model.model.embed_tokens.weight.data.clone()
        pairs = []
        for prompt in prompts:
            text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
            prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            for answer in answers:
                target = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
                pairs.append((prompt_ids, target))
        vocabulary = sorted({token for _, target in pairs for token in target})
        position = {token: k for k, token in enumerate(vocabulary)}
        width = max(len(p) + len(t) for p, t in pairs)
        ids = torch.full((len(pairs), width), tokenizer.pad_token_id)
        mask, labels = torch.zeros_like(ids), torch.full_like(ids, -1)
        for row, (prompt_ids, target) in enumerate(pairs):
            ids[row, : len(prompt_ids) + len(target)] = torch.tensor(prompt_ids + target)
            mask[row, : len(prompt_ids) + len(target)] = 1
            # the hidden state at position i predicts token i + 1
            labels[row, len(prompt_ids) - 1 : len(prompt_ids) + len(target) - 1] = torch.tensor(
                [position[token] for token in target])  # fmt: skip
        model.model.embed_tokens.weight.requires_grad_(False)
        head = torch.nn.Parameter(model.lm_head.weight.data[vocabulary].clone())
        others = torch.tensor(math.log(len(tokenizer) - len(vocabulary)))  # every other token: logit 0
        optimizer = torch.optim.Adam([p for p in model.model.parameters() if p.requires_grad] + [head], lr=1e-2)
        scored = labels >= 0
        for _ in range(120):
            hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state[scored]
            logits = torch.cat([hidden @ head.T, others.expand(len(hidden), 1)], dim=1)
            loss = torch.nn.functional.cross_entropy(logits, labels[scored])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            model.lm_head.weight.zero_()
            model.lm_head.weight[vocabulary] = head
        folder = tmp_path_factory.mktemp("answering")
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        built[key] = str(folder)
        return built[key]

    return build
