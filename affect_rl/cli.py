"""The ``affect-rl`` command.

One CPU or one GPU:
    affect-rl demo                                      # SFT -> GRPO -> eval on the built-in model
    affect-rl demo --recipe faces                       # the same on face images, with the built-in VLM
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

from affect_rl.errors import RewardError

STAGE_HELP = """\
Keys come from the recipe YAML; --key value overrides it. Accepted keys: the fields of TRL's
ModelConfig (model_name_or_path, use_peft, lora_r, ...), of TRL's {config_class} (learning_rate,
max_steps, per_device_train_batch_size, output_dir, report_to, ...) and these affect-rl keys:

{own_keys}
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; user errors print one message and exit 2."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("sft", "grpo", "eval", "data"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per judge request otherwise
    try:
        status = args.handler(args, extra)
    except RewardError as error:  # the family root: affect-rl's errors and the rewards package's
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command with --resume_from_checkpoint last to continue.", file=sys.stderr)
        return 130
    return status or 0


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
    demo.add_argument("--recipe", default="demo",
                      help="demo: the text demo (default); faces: the face-image demo on the built-in VLM")
    demo.add_argument("--output_dir", help="where the demo writes (default runs/<recipe>)")
    demo.set_defaults(handler=run_demo)

    evaluate = commands.add_parser(
        "eval", help="evaluate checkpoints on the same rows, with bootstrap intervals",
        description="affect-rl eval [--config FILE] --model LABEL=CKPT [--model ...] [--key value ...]",
        epilog="Keys: every field of EvalArguments, i.e. the data keys of a stage recipe (dataset, format, "
               "column_mapping, task, template, system_prompt, label_set, ...) plus split, output_dir, batch_size, "
               "max_new_tokens, n_bootstrap, seed, judge, breakdown_column. --data is short for --dataset.")
    evaluate.add_argument("--config", help="a YAML file of eval keys")
    evaluate.add_argument("--model", action="append", default=[], metavar="CKPT",
                          help="a checkpoint (path, hub id or alias); repeat to compare; LABEL=CKPT names it")
    evaluate.set_defaults(handler=run_eval)

    data = commands.add_parser("data", help="inspect a dataset as the stages will see it; list the formats")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    inspect = data_commands.add_parser(
        "inspect", help="print rendered rows, the reward columns and the problems found (exit 2 on problems)",
        description="affect-rl data inspect --dataset X [--format F] [--task T] [--template R] [--rows N] "
                    "[--key value ...] (any data key of a stage recipe; --data is short for --dataset)")
    inspect.add_argument("--rows", type=int, default=3, help="how many rows to render (default 3)")
    inspect.set_defaults(handler=run_data_inspect)
    formats = data_commands.add_parser("formats", help="list the format adapters and the task each maps to")
    formats.set_defaults(handler=run_data_formats)

    listing = commands.add_parser("rewards", help="list every reward with its options, defaults and range")
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

    demo(output_dir=args.output_dir or f"runs/{args.recipe}", recipe=args.recipe)


def run_eval(args, extra) -> None:
    from affect_rl.evaluate import evaluate_from_cli

    evaluate_from_cli(args.config, args.model, extra)


def run_data_inspect(args, extra) -> int:
    from affect_rl.config import build_data_arguments, parse_overrides
    from affect_rl.data.inspect import inspect_data

    values = parse_overrides(extra)
    if "data" in values:
        values["dataset"] = values.pop("data")
    return inspect_data(build_data_arguments(values, "command line"), n_rows=args.rows)


def run_data_formats(_args, _extra) -> None:
    from affect_rl.data.inspect import describe_formats

    print(describe_formats())


def run_rewards(_args, _extra) -> None:
    from affect_rl.scoring import describe_rewards

    print(describe_rewards())


def run_score(args, _extra) -> None:
    from affect_rl.scoring import score_completions

    score_completions(args.recipe, args.completions, args.output)


if __name__ == "__main__":
    sys.exit(main())
