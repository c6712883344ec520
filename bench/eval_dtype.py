"""Greedy decoding speed of the eval harness's generation settings on the CPU: fp32 weights,
fp32 weights under bf16 autocast, and bf16 weights (what ``affect-rl eval`` uses where the CPU
runs bf16 natively).

Autocast casts every weight to bf16 again at each forward, and in decoding each new token is a
forward, so it pays that cast once per token. bf16 weights skip it.

    python bench/eval_dtype.py [--model smollm2-135m-instruct] [--batch_size 32] [--new_tokens 33]

Prints seconds for the prefill alone (1 new token) and for the whole generation, per setting,
and how many greedy completions agree token for token with the fp32 ones.
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from transformers import AutoModelForCausalLM, GenerationConfig

from affect_rl.data import DataArguments, load_splits, render_prompt
from affect_rl.hardware import cpu_supports_bf16
from affect_rl.models import load_tokenizer, resolve_model_path


def timed_generate(model, inputs, new_tokens: int, autocast: bool, pad_token_id: int) -> tuple[float, torch.Tensor]:
    """Seconds to greedily generate exactly ``new_tokens`` tokens for the batch, and the tokens."""
    config = GenerationConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                              pad_token_id=pad_token_id)
    context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with torch.inference_mode(), context:
        started = time.perf_counter()
        output = model.generate(**inputs, generation_config=config)
    return time.perf_counter() - started, output[:, inputs["input_ids"].shape[1]:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--new_tokens", type=int, default=33, help="the demo's SFT completions average 33")
    args = parser.parse_args()
    if not cpu_supports_bf16():
        print("This CPU has no native bf16 (avx512_bf16 / amx_bf16): eval runs in fp32 here.")

    path = resolve_model_path(args.model)
    tokenizer = load_tokenizer(path, padding_side="left")
    rows = list(load_splits(DataArguments(dataset="demo:emotion"))["test"])[: args.batch_size]
    texts = [tokenizer.apply_chat_template(render_prompt(row, "emotion", "r1"), add_generation_prompt=True,
                                           tokenize=False) for row in rows]
    inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    print(f"{len(texts)} prompts of {inputs['input_ids'].shape[1]} tokens (padded), {args.new_tokens} new tokens, "
          f"{torch.get_num_threads()} threads")

    settings = {"fp32": (torch.float32, False), "bf16 autocast": (torch.float32, True),
                "bf16 weights": (torch.bfloat16, False)}
    reference = None
    print(f"{'setting':<14} {'prefill s':>9} {'total s':>8} {'s/token':>8} {'same as fp32':>12}")
    for name, (dtype, autocast) in settings.items():
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()
        timed_generate(model, inputs, 2, autocast, tokenizer.pad_token_id)  # warm-up
        prefill, _ = timed_generate(model, inputs, 1, autocast, tokenizer.pad_token_id)
        total, tokens = timed_generate(model, inputs, args.new_tokens, autocast, tokenizer.pad_token_id)
        reference = tokens if reference is None else reference
        same = int((tokens == reference).all(dim=1).sum())
        per_token = (total - prefill) / max(args.new_tokens - 1, 1)
        print(f"{name:<14} {prefill:>9.2f} {total:>8.2f} {per_token:>8.3f} {same:>7}/{len(texts)}")


if __name__ == "__main__":
    main()
