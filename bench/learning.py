"""Does RL beat SFT, and does it beat simply training SFT longer? The demo, over several seeds.

    python bench/learning.py --seeds 42 7 13                 # report on the test split
    python bench/learning.py --seeds 42 --split validation   # choose hyperparameters here, never on test

For each seed it runs the demo pipeline (``recipes/demo/pipeline.yaml``: SFT, then GRPO from the
SFT model) with that seed, then one arm none of the papers report: **SFT continued** from the
SFT model for the same training time that GRPO took (``max_train_seconds``), on every training
row, at the SFT learning rate held constant. And a control: **a random step**, the SFT weights
moved by Gaussian noise whose root mean square matches GRPO's update tensor by tensor. Its
difference from SFT is how far greedy EW F moves for any change of GRPO's size, a spread the
bootstrap over rows does not contain (``random_step``). Base, SFT, GRPO, the continued SFT and
the random step are then evaluated on the same rows (greedy, as the demo's eval), and the table
gives EW F level 1 with 95% bootstrap intervals, the paired differences GRPO - SFT, GRPO - SFT
continued and random step - SFT, and the wall times. Run it on an idle machine: two torch jobs
at once slow each other 5-10x.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from affect_rl import evaluate, pipeline, recipe_path, sft
from affect_rl.jsonl import read_jsonl

METRIC = "ew_f_level1"


def demo_generation_settings() -> dict:
    """``max_new_tokens``, ``batch_size`` and ``dtype`` of the demo pipeline's eval stage, for evals that must match it."""
    demo_eval = yaml.safe_load(recipe_path("demo/pipeline.yaml").read_text())["stages"][-1]
    return {key: demo_eval[key] for key in ("max_new_tokens", "batch_size", "dtype")}


def run_seed(seed: int, output: Path, split: str, n_bootstrap: int) -> dict:
    """The demo at ``seed``, the continued-SFT arm, and the four checkpoints evaluated on ``split``."""
    run_dir = output / f"seed-{seed}"
    variant = run_dir.parent / f"pipeline-seed-{seed}.yaml"
    variant.parent.mkdir(parents=True, exist_ok=True)
    variant.write_text(yaml.safe_dump({"extends": str(recipe_path("demo/pipeline.yaml")), "name": f"demo-seed-{seed}",
                                       "overrides": {"all": {"seed": seed}}}))  # fmt: skip
    started = time.time()
    manifest = pipeline.run(str(variant), output_dir=str(run_dir), skip=["eval"])
    demo_train_s = time.time() - started
    grpo_seconds = manifest["stages"]["grpo"]["metrics"]["train_runtime"]
    started = time.time()
    sft.run(str(recipe_path("demo/sft.yaml")), model_name_or_path=str(run_dir / "sft"),
            output_dir=str(run_dir / "sft_continued"), seed=seed, max_train_samples=None, num_train_epochs=100,
            lr_scheduler_type="constant", warmup_steps=0, max_train_seconds=grpo_seconds,
            resume_from_checkpoint=None, num_sample_prompts=0)  # fmt: skip
    continued_s = time.time() - started
    update_rms = random_step(run_dir / "sft", run_dir / "grpo", run_dir / "random_step", seed)
    started = time.time()
    report = evaluate.run(
        {"dataset": "demo:emotion", "task": "emotion", "template": "r1", "split": split, **demo_generation_settings(),
         "n_bootstrap": n_bootstrap, "output_dir": str(run_dir / f"eval-{split}")},
        models={"base": "smollm2-135m-instruct", "sft": str(run_dir / "sft"), "grpo": str(run_dir / "grpo"),
                "sft_continued": str(run_dir / "sft_continued"), "random_step": str(run_dir / "random_step")},
    )  # fmt: skip
    eval_s = time.time() - started
    stages = manifest["stages"]
    return {
        "seed": seed,
        "checkpoints": {label: entry["metrics"][METRIC] for label, entry in report["checkpoints"].items()},
        "grpo-sft": report["differences"]["grpo-sft"]["metrics"][METRIC],
        "grpo-sft_continued": paired_difference(run_dir / f"eval-{split}", "grpo", "sft_continued", n_bootstrap),
        "random_step-sft": paired_difference(run_dir / f"eval-{split}", "random_step", "sft", n_bootstrap),
        "grpo_update_rms": update_rms,
        "seconds": {"sft_stage": stages["sft"]["wall_time_s"], "grpo_stage": stages["grpo"]["wall_time_s"],
                    "grpo_train": grpo_seconds, "sft_continued": round(continued_s, 1), "eval": round(eval_s, 1),
                    "demo_without_eval": round(demo_train_s, 1)},
        "n_rows": report["n_rows"],
    }  # fmt: skip


def random_step(sft_dir: Path, grpo_dir: Path, output: Path, seed: int) -> float:
    """Write to ``output`` the SFT model with each weight tensor moved by Gaussian noise of the same
    root mean square as GRPO's change to that tensor; return the RMS of GRPO's whole update."""
    before, after = load_file(sft_dir / "model.safetensors"), load_file(grpo_dir / "model.safetensors")
    generator = torch.Generator().manual_seed(seed)
    moved, squares, count = {}, 0.0, 0
    for name, weight in before.items():
        update = after[name].double() - weight.double()
        squares, count = squares + update.pow(2).sum().item(), count + update.numel()
        noise = torch.randn(weight.shape, generator=generator, dtype=torch.float64) * update.pow(2).mean().sqrt()
        moved[name] = (weight.double() + noise).to(weight.dtype)
    shutil.copytree(sft_dir, output, dirs_exist_ok=True)
    save_file(moved, output / "model.safetensors", metadata={"format": "pt"})
    return (squares / count) ** 0.5


def paired_difference(eval_dir: Path, minuend: str, subtrahend: str, n_bootstrap: int) -> dict:
    """The paired bootstrap interval of ``minuend - subtrahend`` from an eval's written completions,
    for checkpoints the eval did not list next to each other."""
    records = {label: read_jsonl(eval_dir / f"completions_{label}.jsonl")[0] for label in (subtrahend, minuend)}
    metrics = evaluate.task_metrics("emotion", "r1", referenced=True)
    summary = evaluate.summarise(records, metrics, n_bootstrap=n_bootstrap)
    return summary["differences"][f"{minuend}-{subtrahend}"]["metrics"][METRIC]


def cell(interval: dict, signed: bool = False) -> str:
    spec = "+.3f" if signed else ".3f"
    return f"{interval['value']:{spec}} [{interval['ci_low']:{spec}}, {interval['ci_high']:{spec}}]"


def table(results: list[dict], split: str) -> str:
    lines = [f"EW F level 1 on the demo's {split} split ({results[0]['n_rows']} rows), 95% bootstrap intervals", "",
             "| seed | base | SFT | GRPO | SFT continued | GRPO - SFT | GRPO - SFT continued | random step - SFT | "
             "s: SFT / GRPO train / SFT continued |", "|" + " --- |" * 9]  # fmt: skip
    for result in results:
        points, seconds = result["checkpoints"], result["seconds"]
        lines.append(
            f"| {result['seed']} | {cell(points['base'])} | {cell(points['sft'])} | {cell(points['grpo'])} | "
            f"{cell(points['sft_continued'])} | {cell(result['grpo-sft'], True)} | "
            f"{cell(result['grpo-sft_continued'], True)} | {cell(result['random_step-sft'], True)} | "
            f"{seconds['sft_stage']:.0f} / {seconds['grpo_train']:.0f} / "
            f"{seconds['sft_continued']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 13])
    parser.add_argument("--split", default="test", help="test (report) or validation (tune)")
    parser.add_argument("--output", default="runs/bench/learning")
    parser.add_argument("--n_bootstrap", type=int, default=1000)
    args = parser.parse_args()
    output = Path(args.output)
    results = []
    for seed in args.seeds:
        results.append(run_seed(seed, output, args.split, args.n_bootstrap))
        (output / f"results-{args.split}.json").write_text(json.dumps(results, indent=2))
        print(table(results, args.split), flush=True)


if __name__ == "__main__":
    main()
