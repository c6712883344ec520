"""The ``affect-rl`` command.

One CPU or one GPU:
    affect-rl demo                                      # SFT -> GRPO -> eval on the built-in model
    affect-rl sft  --config recipes/demo/sft.yaml  [--key value ...]
    affect-rl grpo --config recipes/demo/grpo.yaml [--key value ...]
    affect-rl pipeline recipes/demo/pipeline.yaml

Several GPUs on one node (DDP or DeepSpeed; see launch/ and the README's "Scaling up"):
    launch/local.sh --gpus 8 --vllm-tp 2 grpo --config FILE          # 6 GPUs train, 2 serve vLLM
    accelerate launch --config_file launch/accelerate/zero2.yaml -m affect_rl.cli grpo --config FILE

Several nodes (Slurm; training nodes + a vLLM rollout node + an optional judge node):
    sbatch --nodes=3 launch/slurm/train.slurm grpo --config FILE
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from importlib.machinery import PathFinder
from pathlib import Path

STAGE_HELP = """\
Keys come from the recipe YAML; --key value overrides it. Accepted keys: the fields of TRL's
ModelConfig (model_name_or_path, use_peft, lora_r, ...), of TRL's {config_class} (learning_rate,
max_steps, per_device_train_batch_size, output_dir, report_to, ...) and these affect-rl keys:

{own_keys}
"""


def shadowing_rewards() -> str | None:
    """Where a ``rewards`` module other than affect-rl's would be imported from (a user's
    ``rewards.py`` or ``rewards/`` in the working folder), or None when there is none."""
    found = PathFinder.find_spec("rewards", sys.path)
    if found is None:
        return None
    ours = Path(__file__).resolve().parent.parent / "rewards"
    locations = [Path(location).resolve() for location in found.submodule_search_locations or []]
    return None if ours in locations else found.origin or str(locations[0])


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; user errors print one message and exit 2."""
    shadow = shadowing_rewards()
    if shadow:
        print(f"error: {shadow} shadows affect-rl's `rewards` package; rename it (e.g. my_rewards.py) and name "
              "your reward in the recipe as my_rewards.py:function.", file=sys.stderr)  # fmt: skip
        return 2
    from affect_rl.errors import RewardError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("sft", "grpo"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per judge request otherwise
    try:
        args.handler(args, extra)
    except RewardError as error:  # the family root: affect-rl's errors and the rewards package's
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command with --resume_from_checkpoint last to continue.", file=sys.stderr)
        return 130
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="affect-rl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for stage in ("sft", "grpo"):
        stage_parser = commands.add_parser(
            stage, help=f"run the {stage.upper()} stage of a recipe",
            description=f"Run the {stage.upper()} stage: affect-rl {stage} --config FILE [--key value ...]",
            epilog=stage_epilog(stage), formatter_class=argparse.RawDescriptionHelpFormatter)
        stage_parser.add_argument("--config", help="the stage recipe YAML (e.g. recipes/demo/%s.yaml)" % stage)
        stage_parser.set_defaults(handler=run_stage, stage=stage)

    pipeline = commands.add_parser("pipeline", help="run a pipeline recipe's stages in order (sft, grpo, eval)")
    pipeline.add_argument("recipe", help="the pipeline YAML, e.g. recipes/demo/pipeline.yaml")
    pipeline.add_argument("--output_dir", help="where the run's output tree goes (overrides the recipe)")
    pipeline.add_argument("--skip", action="append", default=[], metavar="STAGE", help="skip a stage by name")
    pipeline.set_defaults(handler=run_pipeline)

    demo = commands.add_parser("demo", help="SFT -> GRPO -> eval of the built-in model on the demo data, offline")
    demo.add_argument("--output_dir", default="runs/demo", help="where the demo writes (default runs/demo)")
    demo.set_defaults(handler=run_demo)

    evaluate = commands.add_parser("eval", help="evaluate checkpoints on a test split, with bootstrap intervals")
    evaluate.add_argument("--model", action="append", required=True, metavar="CKPT",
                          help="a checkpoint (path, hub id or alias); repeat to compare; LABEL=CKPT names it")
    evaluate.add_argument("--data", default="demo:emotion", help="dataset: demo:TASK, a file or a hub id")
    evaluate.add_argument("--task", default="emotion", help="emotion | facial | empathy")
    evaluate.add_argument("--template", default="r1", help="r1 | facial_cot | kardia | calibrated")
    evaluate.add_argument("--output_dir", default="runs/eval", help="where report.json/.md and plots go")
    evaluate.add_argument("--max_test_samples", type=int, default=None, help="evaluate on at most N test rows")
    evaluate.add_argument("--batch_size", type=int, default=16, help="generation batch size")
    evaluate.add_argument("--max_new_tokens", type=int, default=96, help="generation length cap")
    evaluate.add_argument("--n_bootstrap", type=int, default=1000, help="bootstrap resamples for intervals")
    evaluate.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    evaluate.set_defaults(handler=run_eval)

    listing = commands.add_parser("rewards", help="list every reward with its options, defaults and range")
    listing.add_argument("--custom", action="append", default=[], metavar="NAME",
                         help="also describe your own reward: module:function or path/to/file.py:function")
    listing.set_defaults(handler=run_rewards)

    score = commands.add_parser("score", help="score a JSONL of completions with a recipe's rewards")
    score.add_argument("--recipe", required=True, help="a recipe YAML with a `rewards:` list")
    score.add_argument("--completions", required=True, help="JSONL rows: prompt, completion and gold columns")
    score.add_argument("--output", help="where per-row scores go (default: beside the completions)")
    score.set_defaults(handler=run_score)
    return parser


def stage_epilog(stage: str) -> str:
    from affect_rl.config import RecipeArguments, training_config_class
    from affect_rl.data import DataArguments

    own_fields = dataclasses.fields(DataArguments) + dataclasses.fields(RecipeArguments)
    own_keys = "\n".join(f"  {f.name:<20} {f.metadata.get('help', '')}" for f in own_fields)
    return STAGE_HELP.format(config_class=training_config_class(stage).__name__, own_keys=own_keys)


def run_stage(args, overrides: list[str]) -> None:
    from affect_rl.config import load_stage_config

    cfg = load_stage_config(args.stage, args.config, overrides)
    if args.stage == "sft":
        from affect_rl import sft as stage_module
    else:
        from affect_rl import grpo as stage_module
    stage_module.train(cfg)


def run_pipeline(args, _extra) -> None:
    from affect_rl.pipeline import run_pipeline_file

    run_pipeline_file(args.recipe, output_dir=args.output_dir, skip=args.skip)


def run_demo(args, _extra) -> None:
    from affect_rl.pipeline import run_demo as demo

    demo(output_dir=args.output_dir)


def run_eval(args, _extra) -> None:
    from affect_rl.evaluate import evaluate_from_cli

    evaluate_from_cli(args)


def run_rewards(args, _extra) -> None:
    from affect_rl.scoring import describe_rewards

    print(describe_rewards(args.custom))


def run_score(args, _extra) -> None:
    from affect_rl.scoring import score_completions

    score_completions(args.recipe, args.completions, args.output)


if __name__ == "__main__":
    sys.exit(main())
