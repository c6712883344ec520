"""The ``affect-rl`` command.

One CPU or one GPU:
    affect-rl demo                                      # SFT -> GRPO -> eval on the built-in model
    affect-rl demo --recipe faces                       # the same on face images, with the built-in VLM
    affect-rl sft  --config recipes/demo/sft.yaml  [--key value ...]
    affect-rl grpo --config recipes/demo/grpo.yaml [--key value ...]
    affect-rl pipeline recipes/demo/pipeline.yaml
    affect-rl select --config recipes/demo_select/select.yaml       # rows by pass rate (keep/drop/hard/easy)
    affect-rl synthesize --config recipes/facial_r1/synthesize.yaml # verified self-written reasoning
    affect-rl eval --model sft=runs/demo/sft --data demo:emotion    # reports with bootstrap intervals
    affect-rl data inspect --data rows.jsonl --format emobench      # rows as the stages see them
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
from importlib.machinery import PathFinder
from pathlib import Path

# Static, so `--help` imports neither TRL nor the data layer (each `--help` must take under 1.5 s,
# bench/cli_help.py); `--list-keys` imports them to print every key.
STAGE_HELP = """\
Keys come from the recipe YAML; --key value overrides it, and --key v1 v2 gives a list
(--report_to wandb tensorboard). Accepted keys: the fields of TRL's ModelConfig
(model_name_or_path, use_peft, lora_r, ...);
of {settings};
affect-rl's data keys (dataset, format, task, template, ...) and its recipe keys (rewards,
merge_adapter, wandb_project, wandb_entity, ...).

`affect-rl {stage} --list-keys` prints every key with its type, default and help.
"""


# Stage -> (its --help line, the dataclass that holds its own settings).
STAGES = {
    "align": ("train a VLM's vision encoder and projector to emit each image's label word (before SFT)",
              "affect-rl's AlignArguments (max_steps, learning_rate, mm_projector_lr, embedding_loss_weight, ...)"),
    "sft": ("run the SFT stage of a recipe", "TRL's SFTConfig (learning_rate, max_steps, output_dir, ...)"),
    "grpo": ("run the GRPO stage of a recipe", "TRL's GRPOConfig (learning_rate, num_generations, beta, ...)"),
    "select": ("sample and score completions per row; write keep/drop/hard/easy datasets by pass rate",
               "affect-rl's SelectArguments (num_samples, pass_reward, pass_threshold, keep_band, hard_below, ...)"),
    "synthesize": ("have the model write reasoning for labelled rows; keep what the rewards verify, as SFT data",
                   "affect-rl's SynthesizeArguments (rounds, retries, accept, temperature, ...)"),
}


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

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in (*STAGES, "eval", "data"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    configure_logging()
    from affect_rl.errors import RewardError  # after parsing: `--help` stays free of the rewards package

    try:
        status = args.handler(args, extra)
    except RewardError as error:  # the family root: affect-rl's errors and the rewards package's
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command with --resume_from_checkpoint last to continue.", file=sys.stderr)
        return 130
    return status or 0


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

    for stage, (what, settings) in STAGES.items():
        stage_parser = commands.add_parser(
            stage, help=what,
            description=f"Run the {stage.upper()} stage: affect-rl {stage} --config FILE [--key value ...]",
            epilog=STAGE_HELP.format(settings=settings, stage=stage),
            formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
        stage_parser.add_argument("--config", help="the stage recipe YAML (e.g. recipes/demo/%s.yaml)" % stage)
        stage_parser.add_argument("--list-keys", action="store_true",
                                  help="print every accepted key with its type, default and help, then exit")
        stage_parser.set_defaults(handler=run_stage, stage=stage)

    pipeline = commands.add_parser("pipeline", help="run a pipeline recipe's stages in order (sft, grpo, eval)")
    pipeline.add_argument("recipe", help="the pipeline YAML, e.g. recipes/demo/pipeline.yaml")
    pipeline.add_argument("--output_dir", help="where the run's output tree goes (overrides the recipe)")
    pipeline.add_argument("--skip", action="append", default=[], metavar="STAGE",
                          help="leave a stage as it is (a finished one stays done); repeat for several")
    pipeline.add_argument("--restart", action="append", default=[], metavar="STAGE",
                          help="move the stage's old folder aside (STAGE.old-TIMESTAMP) and run it again, "
                               "with the stages that use it; repeat for several")
    pipeline.add_argument("--force", action="store_true", help="restart every stage (old folders are moved aside)")
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
               "max_new_tokens, dtype, n_bootstrap, seed, judge, breakdown_column. --data is short for --dataset.")
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
    listing.add_argument("--custom", action="append", default=[], metavar="NAME",
                         help="also describe your own reward: module:function or path/to/file.py:function")
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
    run_loaded_stage(cfg)


def run_loaded_stage(cfg):
    """Run a parsed stage: train with TRL (sft, grpo), or run the stage's own loop (align, select, synthesize)."""
    import importlib

    module = importlib.import_module(f"affect_rl.{cfg.stage}")
    return module.train(cfg) if cfg.stage in ("sft", "grpo") else module.run(cfg)


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

    from affect_rl.config import RecipeArguments, training_config_class
    from affect_rl.config_values import field_types, type_name
    from affect_rl.data import DataArguments

    groups = {"Model (TRL ModelConfig)": ModelConfig, "Data (affect-rl)": DataArguments,
              "Recipe (affect-rl)": RecipeArguments,
              f"Stage settings ({training_config_class(stage).__name__})": training_config_class(stage)}
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

    run_pipeline_file(shipped_recipe(args.recipe), output_dir=args.output_dir, skip=args.skip, restart=args.restart,
                      force=args.force)


def run_demo(args, _extra) -> None:
    from affect_rl.pipeline import run_demo as demo

    demo(output_dir=args.output_dir or f"runs/{args.recipe}", recipe=args.recipe)


def run_eval(args, extra) -> None:
    from affect_rl.evaluate import evaluate_from_cli

    evaluate_from_cli(args.config, args.model, extra)


def run_data_inspect(args, extra) -> int:
    from affect_rl.config import build_data_arguments
    from affect_rl.config_values import parse_overrides
    from affect_rl.data.inspect import inspect_data

    values = parse_overrides(extra)
    if "data" in values:
        values["dataset"] = values.pop("data")
    return inspect_data(build_data_arguments(values, "command line"), n_rows=args.rows)


def run_data_formats(_args, _extra) -> None:
    from affect_rl.data.inspect import describe_formats

    print(describe_formats())


def run_export(args, _extra) -> None:
    from affect_rl.export import export_model

    export_model(args.model, merge=args.merge, output=args.output, report=args.report, push=args.push,
                 private=args.private, overwrite=args.overwrite)


def run_rewards(args, _extra) -> None:
    from affect_rl.scoring import describe_rewards

    print(describe_rewards(args.custom))


def run_score(args, _extra) -> None:
    from affect_rl.scoring import score_completions

    score_completions(shipped_recipe(args.recipe), args.completions, args.output)


if __name__ == "__main__":
    sys.exit(main())
