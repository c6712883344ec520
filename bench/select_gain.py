"""Does GRPO learn more from the rows ``select`` keeps? The demo at equal GRPO steps, several seeds.

    python bench/select_gain.py --seeds 42 7

For each seed one pipeline: the demo's SFT; a ``select`` stage (``recipes/demo_select/select.yaml``)
that samples completions of every training row from the SFT model and keeps the rows whose pass
rate lies inside the band; then two GRPO stages from the SFT model with the demo's GRPO recipe
and the same number of steps, one on every training row (``grpo_all``) and one on the kept rows
(``grpo_keep``). It reports, for each GRPO run, the mean over steps of TRL's
``frac_reward_zero_std`` (groups whose completions all score the same: no learning signal) and
of ``reward_std``, and EW F level 1 of each model on the test split with the paired differences
GRPO - SFT (95% bootstrap intervals). Run it on an idle machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from learning import demo_generation_settings

from affect_rl import evaluate, pipeline, recipe_path

METRIC = "ew_f_level1"


def pipeline_yaml(seed: int) -> dict:
    """SFT -> select -> GRPO on all rows and GRPO on the kept rows, every stage at ``seed``."""
    demo, select = recipe_path("demo"), recipe_path("demo_select")
    seeded = {"seed": seed}
    return {"name": f"select-gain-{seed}", "stages": [
        {"name": "sft", "stage": "sft", "config": str(demo / "sft.yaml"),
         "overrides": seeded | {"max_train_samples": 192}},  # select samples train[192:288], rows SFT did not see
        {"name": "select", "stage": "select", "config": str(select / "select.yaml"), "model_from": "sft",
         "overrides": seeded},
        {"name": "grpo_all", "stage": "grpo", "config": str(demo / "grpo.yaml"), "model_from": "sft",
         "overrides": seeded},
        {"name": "grpo_keep", "stage": "grpo", "config": str(demo / "grpo.yaml"), "model_from": "sft",
         "dataset_from": "select/keep", "overrides": seeded},
    ]}  # fmt: skip


def mean_logged(run: Path, key: str) -> float:
    history = json.loads((run / "trainer_state.json").read_text())["log_history"]
    values = [entry[key] for entry in history if key in entry]
    return sum(values) / len(values)


def run_seed(seed: int, output: Path, n_bootstrap: int) -> dict:
    run_dir = output / f"seed-{seed}"
    recipe = output / f"pipeline-seed-{seed}.yaml"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text(yaml.safe_dump(pipeline_yaml(seed), sort_keys=False))
    manifest = pipeline.run(str(recipe), output_dir=str(run_dir))
    report = evaluate.run(
        {"dataset": "demo:emotion", "task": "emotion", "split": "test", **demo_generation_settings(),
         "n_bootstrap": n_bootstrap, "output_dir": str(run_dir / "eval")},
        models={"grpo_all": str(run_dir / "grpo_all"), "sft": str(run_dir / "sft"), "grpo_keep": str(run_dir / "grpo_keep")},
    )  # fmt: skip
    differences = report["differences"]  # consecutive pairs: sft-grpo_all, grpo_keep-sft
    gain_all = differences["sft-grpo_all"]["metrics"][METRIC]
    return {
        "seed": seed,
        "kept_rows": manifest["stages"]["select"]["summary"]["counts"]["keep"],
        "rows": manifest["stages"]["select"]["summary"]["rows"],
        "runs": {name: {"frac_reward_zero_std": mean_logged(run_dir / name, "frac_reward_zero_std"),
                        "reward_std": mean_logged(run_dir / name, "reward_std"),
                        "seconds": manifest["stages"][name]["wall_time_s"]} for name in ("grpo_all", "grpo_keep")},
        "gain_all": {"value": -gain_all["value"], "ci_low": -gain_all["ci_high"], "ci_high": -gain_all["ci_low"]},
        "gain_keep": differences["grpo_keep-sft"]["metrics"][METRIC],
        "n_rows": report["n_rows"],
    }  # fmt: skip


def cell(interval: dict) -> str:
    return f"{interval['value']:+.3f} [{interval['ci_low']:+.3f}, {interval['ci_high']:+.3f}]"


def table(results: list[dict]) -> str:
    lines = ["| seed | rows kept | GRPO on | frac_reward_zero_std | reward_std | GRPO - SFT (EW F L1, test) | s |",
             "|" + " --- |" * 7]  # fmt: skip
    for result in results:
        for name, gain in (("grpo_all", "gain_all"), ("grpo_keep", "gain_keep")):
            run = result["runs"][name]
            rows = "all" if name == "grpo_all" else f"kept ({result['kept_rows']}/{result['rows']})"
            lines.append(f"| {result['seed']} | {result['kept_rows']} | {rows} | {run['frac_reward_zero_std']:.3f} | "
                         f"{run['reward_std']:.3f} | {cell(result[gain])} | {run['seconds']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7])
    parser.add_argument("--output", default="runs/bench/select_gain")
    parser.add_argument("--n_bootstrap", type=int, default=1000)
    args = parser.parse_args()
    output = Path(args.output)
    results = []
    for seed in args.seeds:
        results.append(run_seed(seed, output, args.n_bootstrap))
        (output / "results.json").write_text(json.dumps(results, indent=2))
        print(table(results), flush=True)


if __name__ == "__main__":
    main()
