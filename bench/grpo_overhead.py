"""Per-step overhead of the affect-rl GRPO stage over TRL's GRPOTrainer called directly.

Both trainers get the same tiny model (2 layers, SmolLM2's tokenizer), the same rendered demo
prompts, the same reward functions and the same GRPOConfig; they alternate (A B A B ...) in one
process so machine noise hits both alike. The first step of each run (warm-up) is dropped.

affect-rl makes TRL's fused LM head score only the completion positions on CPU
(``affect_rl.cpu_speedups``), a process-wide change, so TRL runs twice: with that change (the
overhead comparison, same work) and as shipped (what the change saves).

    python bench/grpo_overhead.py [--rounds 4] [--steps 6]

Goal: affect-rl / TRL <= 1.03.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time

import torch
import trl.trainer.utils as trl_utils
from transformers import LlamaConfig, LlamaForCausalLM, TrainerCallback

import rewards
from affect_rl import grpo
from affect_rl.config import build_stage_config
from affect_rl.cpu_speedups import score_labelled_positions_only
from affect_rl.data import load_splits, to_grpo_dataset
from affect_rl.models import load_tokenizer


REWARDS = [{"name": "emotion_wheel", "weight": 1.0}, {"name": "format", "weight": 0.2},
           {"name": "length", "weight": 0.2, "max_length": 32, "buffer": 8}]


class StepTimer(TrainerCallback):
    """Wall time of every optimisation step (generation, rewards, loss and update)."""

    def __init__(self):
        self.durations: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.durations.append(time.perf_counter() - self.started)


def tiny_model(folder: str) -> str:
    tokenizer = load_tokenizer("smollm2-135m-instruct")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def stage_config(model_dir: str, output_dir: str, steps: int):
    values = {"model_name_or_path": model_dir, "dataset": "demo:emotion", "rewards": REWARDS,
              "output_dir": output_dir, "max_steps": steps, "per_device_train_batch_size": 8,
              "num_generations": 4, "max_completion_length": 32, "logging_steps": 1, "save_strategy": "no",
              "report_to": "none", "seed": 0, "bf16": False, "disable_tqdm": True}
    return build_stage_config("grpo", values, "bench")


def affect_rl_trainer(cfg):
    trainer, _ = grpo.build_trainer(cfg)
    return trainer


def trl_trainer(cfg):
    from trl import GRPOTrainer

    reward_fns = [rewards.build(spec["name"], **{k: v for k, v in spec.items() if k not in ("name", "weight")})
                  for spec in cfg.recipe.rewards]
    dataset = to_grpo_dataset(load_splits(cfg.data)["train"], cfg.data)
    return GRPOTrainer(model=LlamaForCausalLM.from_pretrained(cfg.model.model_name_or_path),
                       reward_funcs=reward_fns, args=cfg.training, train_dataset=dataset,
                       processing_class=load_tokenizer(cfg.model.model_name_or_path, padding_side="left"))


@contextlib.contextmanager
def trl_as_shipped():
    """Undo affect-rl's CPU change to TRL's fused LM head for the duration."""
    patched = trl_utils._use_triton
    trl_utils._use_triton = patched.as_shipped
    try:
        yield
    finally:
        trl_utils._use_triton = patched


def timed_steps(make_trainer, cfg, context=contextlib.nullcontext) -> list[float]:
    timer = StepTimer()
    trainer = make_trainer(cfg)
    trainer.add_callback(timer)
    torch.manual_seed(0)
    with context():
        trainer.train()
    return timer.durations[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    score_labelled_positions_only()
    with tempfile.TemporaryDirectory() as folder:
        cfg = stage_config(tiny_model(f"{folder}/model"), f"{folder}/out", args.steps)
        order = [("affect-rl", affect_rl_trainer, contextlib.nullcontext), ("trl", trl_trainer, contextlib.nullcontext),
                 ("trl as shipped", trl_trainer, trl_as_shipped)]
        timings = {name: [] for name, _, _ in order}
        for round_index in range(args.rounds):
            for name, make, context in order if round_index % 2 == 0 else order[::-1]:
                timings[name] += timed_steps(make, cfg, context)
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print("| trainer | median s/step | steps timed |\n| --- | --- | --- |")
    for name, values in timings.items():
        print(f"| {name} | {medians[name]:.3f} | {len(values)} |")
    print(f"\noverhead ratio affect-rl / trl = {medians['affect-rl'] / medians['trl']:.3f} (goal <= 1.03)")
    print(f"speed-up over TRL as shipped = {medians['trl as shipped'] / medians['affect-rl']:.2f}x "
          "(the CPU fused-LM-head change)")


if __name__ == "__main__":
    main()
