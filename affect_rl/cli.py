"""The ``affect-rl`` command.

One CPU or one GPU:
    affect-rl demo                                      # SFT -> GRPO -> eval on the built-in model
    affect-rl sft  --config recipes/demo/sft.yaml  [--key value ...]
    affect-rl grpo --config recipes/demo/grpo.yaml [--key value ...]
    affect-rl pipeline recipes/demo/pipeline.yaml
    affect-rl export --model runs/demo/sft --merge [--push USER/NAME]   # a standalone checkpoint

Several GPUs on one node (DDP or DeepSpeed; see launch/ and the README's "Scaling up"):
    launch/local.sh --gpus 8 --vllm-tp 2 grpo --config FILE          # 6 GPUs train, 2 serve vLLM
    accelerate launch --config_file launch/accelerate/zero2.yaml -m affect_rl.cli grpo --config FILE

Several nodes (Slurm; training nodes + a vLLM rollout node + an optional judge node):
    sbatch --nodes=3 launch/slurm/train.slurm grpo --config FILE
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

# Static, so `--help` imports neither TRL nor the data layer (each `--help` must take under 1.5 s,
# bench/cli_help.py); `--list-keys` imports them to print every key.
STAGE_HELP = """\
Keys come from the recipe YAML; --key value overrides it, and --key v1 v2 gives a list
(--report_to wandb tensorboard). Accepted keys: the fields of TRL's ModelConfig
(model_name_or_path, use_peft, lora_r, ...), of TRL's {config_class} (learning_rate, max_steps,
per_device_train_batch_size, output_dir, report_to, run_name, push_to_hub, ...), affect-rl's data
keys (dataset, task, template, ...) and its recipe keys (rewards, merge_adapter, wandb_project,
wandb_entity, ...).

`affect-rl {stage} --list-keys` prints every key with its type, default and help.
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; user errors print one message and exit 2."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("sft", "grpo"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    configure_logging()
    from affect_rl.errors import RewardError  # after parsing: `--help` stays free of the rewards package

    try:
        args.handler(args, extra)
    except RewardError as error:  # the family root: affect-rl's errors and the rewards package's
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command with --resume_from_checkpoint last to continue.", file=sys.stderr)
        return 130
    return 0


def configure_logging() -> None:
    """INFO on the main process, WARNING on the others, so a job of N processes prints each
    message once. The global rank comes from the launcher's environment (accelerate launch,
    torchrun and the DeepSpeed launcher set RANK and LOCAL_RANK), read without importing torch;
    transformers does the same for its own loggers with ``log_level_replica``."""
    rank = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per judge request otherwise


def build_parser() -> argparse.ArgumentParser:
    """The command's parser; building it and printing any ``--help`` import nothing heavy."""
    parser = argparse.ArgumentParser(prog="affect-rl", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for stage, config_class in (("sft", "SFTConfig"), ("grpo", "GRPOConfig")):
        stage_parser = commands.add_parser(
            stage, help=f"run the {stage.upper()} stage of a recipe",
            description=f"Run the {stage.upper()} stage: affect-rl {stage} --config FILE [--key value ...]",
            epilog=STAGE_HELP.format(config_class=config_class, stage=stage),
            formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
        stage_parser.add_argument("--config", help="the stage recipe YAML (e.g. recipes/demo/%s.yaml)" % stage)
        stage_parser.add_argument("--list-keys", action="store_true",
                                  help="print every accepted key with its type, default and help, then exit")
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

    export = commands.add_parser("export", help="merge a LoRA adapter, save a standalone checkpoint and model card, "
                                                 "optionally push it to the Hub")
    export.add_argument("--model", required=True, metavar="DIR", help="a stage's output folder (model or LoRA adapter)")
    export.add_argument("--merge", action="store_true", help="merge the LoRA adapter into its base model")
    export.add_argument("--output", metavar="DIR", help="where the checkpoint goes (default: DIR-merged with --merge, "
                                                       "else DIR-export)")
    export.add_argument("--report", metavar="FILE", help="the eval report.json for the model card (default: the "
                                                        "report of the pipeline's eval stage that scored DIR)")
    export.add_argument("--push", metavar="REPO", help="upload the export to this Hugging Face Hub repository")
    export.add_argument("--private", action="store_true", help="create the Hub repository as private")
    export.add_argument("--overwrite", action="store_true", help="replace an earlier export in --output")
    export.set_defaults(handler=run_export)

    listing = commands.add_parser("rewards", help="list every reward with its options, defaults and range")
    listing.set_defaults(handler=run_rewards)

    score = commands.add_parser("score", help="score a JSONL of completions with a recipe's rewards")
    score.add_argument("--recipe", required=True, help="a recipe YAML with a `rewards:` list")
    score.add_argument("--completions", required=True, help="JSONL rows: prompt, completion and gold columns")
    score.add_argument("--output", help="where per-row scores go (default: beside the completions)")
    score.set_defaults(handler=run_score)
    return parser


def run_stage(args, overrides: list[str]) -> None:
    from affect_rl.config import load_stage_config

    if args.list_keys:
        print(list_keys(args.stage))
        return
    cfg = load_stage_config(args.stage, shipped_recipe(args.config), overrides)
    if args.stage == "sft":
        from affect_rl import sft as stage_module
    else:
        from affect_rl import grpo as stage_module
    stage_module.train(cfg)


def shipped_recipe(path: str | None) -> str | None:
    """``path`` when it exists, else the recipe of that name shipped with affect-rl
    (``recipes/demo/sft.yaml`` or ``demo/sft.yaml``): the README's commands work from a wheel,
    without a clone."""
    if path is None or Path(path).exists():
        return path
    from affect_rl import recipe_path

    shipped = recipe_path(path.removeprefix("recipes/"))
    if not shipped.is_file():
        return path  # the config loader says the file does not exist
    logging.getLogger(__name__).info("Using the recipe shipped with affect-rl: %s", shipped)
    return str(shipped)


def list_keys(stage: str) -> str:
    """Every key a stage recipe accepts, grouped by the dataclass that owns it: name, type,
    default and the field's help."""
    import dataclasses
    import textwrap

    from trl import ModelConfig

    from affect_rl.config import RecipeArguments, field_types, training_config_class, type_name
    from affect_rl.data import DataArguments

    groups = {"Model (TRL ModelConfig)": ModelConfig, "Data (affect-rl)": DataArguments,
              "Recipe (affect-rl)": RecipeArguments,
              f"Training (TRL {training_config_class(stage).__name__})": training_config_class(stage)}
    lines = []
    for title, cls in groups.items():
        lines += ["", f"{title}:"]
        types = field_types(cls)
        for f in (f for f in dataclasses.fields(cls) if f.init):
            if f.default is not dataclasses.MISSING:
                default = f" = {f.default!r}"
            elif f.default_factory is not dataclasses.MISSING:
                default = f" = {f.default_factory()!r}"
            else:
                default = ""
            lines.append(f"  {f.name}: {type_name(types[f.name])}{default}")
            help_text = " ".join(str(f.metadata.get("help", "")).split())
            lines += textwrap.wrap(help_text, width=96, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines[1:])


def run_pipeline(args, _extra) -> None:
    from affect_rl.pipeline import run_pipeline_file

    run_pipeline_file(shipped_recipe(args.recipe), output_dir=args.output_dir, skip=args.skip)


def run_demo(args, _extra) -> None:
    from affect_rl.pipeline import run_demo as demo

    demo(output_dir=args.output_dir)


def run_eval(args, _extra) -> None:
    from affect_rl.evaluate import evaluate_from_cli

    evaluate_from_cli(args)


def run_export(args, _extra) -> None:
    from affect_rl.export import export_model

    export_model(args.model, merge=args.merge, output=args.output, report=args.report, push=args.push,
                 private=args.private, overwrite=args.overwrite)


def run_rewards(_args, _extra) -> None:
    from affect_rl.scoring import describe_rewards

    print(describe_rewards())


def run_score(args, _extra) -> None:
    from affect_rl.scoring import score_completions

    score_completions(shipped_recipe(args.recipe), args.completions, args.output)


if __name__ == "__main__":
    sys.exit(main())
