"""Greedy eval decoding on the CPU: HF ``generate``, which prefills every prompt whole and keeps
finished rows in the batch until the last one ends, against ``greedy_decode`` (what
``affect-rl eval`` runs for text models), which prefills the prompts' common prefix once and
drops each row as it ends.

    python bench/eval_decoding.py --model runs/demo/sft [--split test] [--batch_size 96]
                                  [--max_new_tokens 48] [--dtype float32]

Both decode the demo's prompts in the eval's batches (sorted by length). Prints seconds per path,
the share of row-steps ``generate`` spends on finished rows, and how many completions agree token
for token.
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import AutoModelForCausalLM, GenerationConfig

from affect_rl.data import DataArguments, load_splits, render_prompt
from affect_rl.greedy_decoding import greedy_decode
from affect_rl.models import load_tokenizer, resolve_model_path
from affect_rl.rollouts import cut_after_first_eos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="e.g. runs/demo/sft (the eval's first checkpoint)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch_size", type=int, default=96, help="the demo eval's")
    parser.add_argument("--max_new_tokens", type=int, default=48, help="the demo eval's")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"], help="the demo eval's: float32")
    args = parser.parse_args()

    path = resolve_model_path(args.model)
    tokenizer = load_tokenizer(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, args.dtype)).eval()
    rows = list(load_splits(DataArguments(dataset="demo:emotion"))[args.split])
    texts = sorted((tokenizer.apply_chat_template(render_prompt(row, "emotion", "r1"), add_generation_prompt=True,
                                                  tokenize=False) for row in rows), key=len)  # fmt: skip
    eos = [tokenizer.eos_token_id]
    config = GenerationConfig(max_new_tokens=args.max_new_tokens, do_sample=False, eos_token_id=eos,
                              pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    print(f"{len(texts)} {args.split} prompts in batches of {args.batch_size}, up to {args.max_new_tokens} new tokens, "
          f"{args.dtype}, {torch.get_num_threads()} threads")

    seconds = {"generate": 0.0, "greedy_decode": 0.0}
    same = row_steps = finished_row_steps = 0
    for start in range(0, len(texts), args.batch_size):
        inputs = tokenizer(texts[start : start + args.batch_size], return_tensors="pt", padding=True,
                           add_special_tokens=False)  # fmt: skip
        began = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(**inputs, generation_config=config)
        seconds["generate"] += time.perf_counter() - began
        reference = cut_after_first_eos(output[:, inputs["input_ids"].shape[1] :], eos)
        began = time.perf_counter()
        decoded = greedy_decode(model, inputs["input_ids"], inputs["attention_mask"], config, eos)
        seconds["greedy_decode"] += time.perf_counter() - began
        same += sum(a == b for a, b in zip(reference, decoded))
        steps = output.shape[1] - inputs["input_ids"].shape[1]
        row_steps += steps * len(reference)
        finished_row_steps += sum(steps - len(tokens) for tokens in reference)

    print(f"generate spends {finished_row_steps / row_steps:.0%} of its row-steps on rows that have ended")
    for name, value in seconds.items():
        print(f"{name:<20} {value:7.1f} s")
    print(f"greedy_decode / generate: {seconds['greedy_decode'] / seconds['generate']:.2f}; "
          f"identical completions: {same}/{len(texts)}")


if __name__ == "__main__":
    main()
