"""Recipe YAML + command-line overrides -> typed stage configuration.

A stage recipe is one flat YAML mapping whose keys are the fields of four dataclasses:
TRL's ``ModelConfig`` (model and LoRA), :class:`~affect_rl.data.DataArguments` (data and
template), :class:`RecipeArguments` (rewards and stage options) and TRL's ``SFTConfig`` or
``GRPOConfig`` (training). ``--key value`` on the command line wins over the YAML. Unknown
keys, wrong types, duplicated YAML keys, non-finite numbers, non-positive sizes and bad
combinations raise :class:`~affect_rl.errors.ConfigError` naming the file and the key, before
any model loads. Reading and typing the values is ``affect_rl.config_values``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from typing import Any


from affect_rl.config_values import (check_range, coerce, field_types, parse_overrides, read_yaml_mapping,
                                     unknown_key_message)
from affect_rl.data import DataArguments
from affect_rl.data.tasks import get_task
from affect_rl.errors import ConfigError, EnvironmentProblem
from affect_rl.hardware import cpu_supports_bf16, cuda_available, cuda_supports_bf16, launched_with
from affect_rl.models import DEFAULT_MODEL

TRAINING_STAGES = ("sft", "grpo")
DATA_STAGES = ("select", "synthesize")  # they generate and score; nothing is trained
ALIGN_STAGES = ("align",)  # a VLM's vision part, by itself (affect_rl.align); it writes a model, without TRL
STAGES = ALIGN_STAGES + TRAINING_STAGES + DATA_STAGES



@dataclass
class RecipeArguments:
    """Options of a stage that are neither model, data nor TRL training arguments."""

    # Rewards (GRPO)
    rewards: list[dict] = field(
        default_factory=list,
        metadata={
            "help": "GRPO rewards, each {name: NAME, weight: W, OPTION: VALUE...}, optionally applies_to: "
            "{COLUMN: [values]} to score only those rows; NAME may be module:function or path/file.py:function. "
            "`affect-rl rewards` lists names and options. Weights become GRPOConfig.reward_weights."
        },
    )
    # Starting from an SFT checkpoint trained with LoRA
    merge_adapter: bool = field(
        default=True,
        metadata={
            "help": "When model_name_or_path is a LoRA adapter folder: merge it into its base model before this "
            "stage (true; a new LoRA then names that folder as its base, and loading it merges the chain) or keep "
            "training the same adapter (false)."
        },
    )
    # Vision-language models (ignored for text models)
    train_vision_tower: bool = field(
        default=False,
        metadata={"help": "VLMs: train the vision encoder fully (with use_peft: saved beside the LoRA adapter) "
                          "instead of freezing it. LoRA itself targets the language model only."},
    )  # fmt: skip
    train_projector: bool = field(
        default=True,
        metadata={"help": "VLMs: train the projector between vision encoder and language model (Idefics3 "
                          "`connector`, LLaVA `multi_modal_projector`, Qwen2.5-VL `merger`) fully, or freeze it."},
    )  # fmt: skip
    # Rollouts (GRPO)
    fast_rollouts: bool = field(
        default=True,
        metadata={
            "help": "On CPU without vLLM: sample GRPO completions from a bf16 copy of the policy (under bf16) and "
            "prefill each prompt once for its num_generations completions (affect_rl/rollouts.py); with "
            "num_iterations > 1, take the old policy's log-probabilities from each rollout's first pass instead of "
            "an extra forward (affect_rl/first_pass_logprobs.py). No effect on GPUs, with vLLM, or under DeepSpeed "
            "or FSDP."
        },
    )
    share_prompts: bool = field(
        default=True,
        metadata={
            "help": "On CPU: in the GRPO loss, run each prompt once for its num_generations completions instead of "
            "once per completion (with gradient accumulation, each prompt's completions in one micro-batch); in "
            "SFT, run the prefix every row of a batch shares (the chat template's system turn) once "
            "(affect_rl/shared_prompts.py). No effect on GPUs or under DeepSpeed or FSDP."
        },
    )
    cpu_loss_kernels: bool = field(
        default=True,
        metadata={
            "help": "On CPU, in the SFT and GRPO loss: eager attention (unless attn_implementation is set), faster "
            "here than SDPA's CPU kernels, and the log-probabilities over the vocabulary from one GEMM and one "
            "fused log_softmax per block of tokens, its gradient GEMMs in bf16 under autocast, instead of TRL's "
            "chunked kernel's CPU fallback (affect_rl/loss_kernels.py). No effect on GPUs or under DeepSpeed or FSDP."
        },
    )
    keep_freed_memory: bool = field(
        default=True,
        metadata={
            "help": "On CPU under glibc (Linux): keep freed memory in the process for the next large tensor instead "
            "of fresh, kernel-zeroed pages each time (mallopt thresholds 2 GiB; affect_rl/freed_memory.py). Same "
            "numbers, about a fifth less time per GRPO step; the process keeps its peak memory until it exits. "
            "No effect on GPUs or under DeepSpeed or FSDP."
        },
    )
    # Before/after samples printed at the end of a stage
    num_sample_prompts: int = field(
        default=2, metadata={"help": "Held-out prompts whose generations are printed after training (0 = none)."}
    )
    max_train_seconds: float | None = field(
        default=None,
        metadata={"help": "Stop training (saving the model as usual) at the first step end after this many seconds "
                          "of training; null: no limit. For comparisons at equal wall-clock time."},
    )  # fmt: skip

    # Tracking (with report_to: wandb; the run's name is TRL's run_name; affect_rl/tracking.py)
    wandb_project: str | None = field(
        default=None, metadata={"help": "W&B project of this stage's run (default: $WANDB_PROJECT, else affect-rl)."}
    )
    wandb_entity: str | None = field(
        default=None, metadata={"help": "W&B entity (user or team) of this stage's run (default: $WANDB_ENTITY, "
                                "else your W&B default)."}
    )


@dataclass
class StageConfig:
    """Everything one stage needs, parsed and validated."""

    stage: str
    source: str
    model: Any  # trl.ModelConfig
    data: DataArguments
    recipe: RecipeArguments
    training: Any  # trl.SFTConfig | trl.GRPOConfig
    explicit_keys: frozenset[str] = frozenset()


def training_config_class(stage: str):
    """The stage's own settings: TRL's config dataclass for a training stage, affect-rl's for the others."""
    if stage == "align":
        from affect_rl.align import AlignArguments

        return AlignArguments
    if stage == "select":
        from affect_rl.select import SelectArguments

        return SelectArguments
    if stage == "synthesize":
        from affect_rl.synthesize import SynthesizeArguments

        return SynthesizeArguments
    from trl import GRPOConfig, SFTConfig

    return {"sft": SFTConfig, "grpo": GRPOConfig}[stage]


def load_stage_config(stage: str, config_path: str | None = None, overrides: list[str] | None = None) -> StageConfig:
    """Parse a stage recipe and its command-line overrides into a :class:`StageConfig`."""
    if stage not in STAGES:
        raise ConfigError(f"Unknown stage {stage!r}: choose one of {', '.join(STAGES)}.")
    source = config_path or "command line"
    values = read_yaml_mapping(config_path) if config_path else {}
    values.update(parse_overrides(overrides or []))
    return build_stage_config(stage, values, source)


def build_stage_config(stage: str, values: dict[str, Any], source: str, extra_rewards: int = 0) -> StageConfig:
    """Route, type-check and default ``values``, then build the dataclasses.

    ``extra_rewards``: reward callables the Python API passes beside the recipe's ``rewards:``
    (a GRPO stage may then have no ``rewards:`` of its own; each extra one weighs 1 unless
    ``reward_weights`` says otherwise)."""
    from trl import ModelConfig

    groups = {
        "model": ModelConfig,
        "data": DataArguments,
        "recipe": RecipeArguments,
        "training": training_config_class(stage),
    }
    field_owner = {f.name: group for group, cls in groups.items() for f in dataclasses.fields(cls) if f.init}
    routed: dict[str, dict[str, Any]] = {group: {} for group in groups}
    for key, value in values.items():
        if key not in field_owner:
            raise ConfigError(unknown_key_message(key, field_owner, source, stage))
        owner = groups[field_owner[key]]
        routed[field_owner[key]][key] = check_range(key, coerce(value, field_types(owner)[key], key, source), source)

    routed["model"].setdefault("model_name_or_path", DEFAULT_MODEL)
    routed["training"].setdefault("output_dir", f"runs/{stage}")
    if stage in TRAINING_STAGES:
        routed["training"].setdefault("report_to", "none")
        apply_hardware_defaults(routed["training"])
        # transformers' default (true) logs a NaN or inf loss as the mean of the previous ones,
        # which would hide the divergence that affect_rl.health stops training on.
        routed["training"].setdefault("logging_nan_inf_filter", False)
    check_quantization(routed["model"], source)
    if stage == "grpo" and routed["training"].get("temperature") == 0:
        raise ConfigError(f"{source}: GRPO samples a group of completions per prompt, so temperature must be "
                          "above 0 (0 means greedy, for select and synthesize stages); e.g. temperature: 1.0.")

    built = {group: construct(groups[group], kwargs, source) for group, kwargs in routed.items()}
    cfg = StageConfig(stage=stage, source=source, explicit_keys=frozenset(values), **built)
    if stage in ("grpo", *DATA_STAGES):
        entries = validate_rewards(cfg) if cfg.recipe.rewards or not extra_rewards else []
        if stage == "grpo" and "reward_weights" not in routed["training"]:
            cfg.training.reward_weights = [entry.weight for entry in entries] + [1.0] * extra_rewards
    return cfg


def build_arguments(cls, values: dict[str, Any], source: str, command: str):
    """One arguments dataclass (DataArguments, EvalArguments) from keys, typed and checked like a recipe."""
    types = field_types(cls)
    typed = {}
    for key, value in values.items():
        if key not in types:
            raise ConfigError(unknown_key_message(key, types, source, command))
        typed[key] = coerce(value, types[key], key, source)
    return construct(cls, typed, source)


def build_data_arguments(values: dict[str, Any], source: str) -> DataArguments:
    """DataArguments from a mapping of data keys (``affect-rl data inspect``)."""
    return build_arguments(DataArguments, values, source, "data inspect")




def check_quantization(model: dict[str, Any], source: str) -> None:
    """``load_in_4bit`` / ``load_in_8bit`` load the weights through bitsandbytes (applied in
    ``affect_rl.models``); check here that they can be: one of them, trained through LoRA, on a
    CUDA GPU with bitsandbytes installed."""
    wanted = [key for key in ("load_in_4bit", "load_in_8bit") if model.get(key)]
    if not wanted:
        return
    if len(wanted) == 2:
        raise ConfigError(f"{source}: load_in_4bit and load_in_8bit are exclusive: set one of them.")
    if not model.get("use_peft"):
        raise ConfigError(f"{source}: {wanted[0]} needs use_peft: true (quantized weights are frozen; "
                          "only a LoRA adapter on top of them can train).")
    problems = []
    if importlib.util.find_spec("bitsandbytes") is None:
        problems.append("bitsandbytes is not installed (pip install bitsandbytes)")
    if not cuda_available():
        problems.append("no CUDA GPU is visible (bitsandbytes quantizes on the GPU)")
    if problems:
        raise EnvironmentProblem(f"{source}: {wanted[0]}: true cannot run here: {'; '.join(problems)}. "
                                 f"Remove {wanted[0]} to train unquantized weights.")


def apply_hardware_defaults(training: dict[str, Any]) -> None:
    """CPU-aware defaults for keys the recipe left unset.

    Without a GPU: train on the CPU (under DeepSpeed: gloo, fp32), no gradient checkpointing (it
    recomputes activations to save memory and only slows CPU runs), bf16 autocast only where the
    CPU runs bf16 natively (about twice as fast as fp32 on an avx512_bf16 CPU), else fp32.
    """
    if cuda_available():
        training.setdefault("bf16", cuda_supports_bf16())
        return
    on_deepspeed = launched_with("DEEPSPEED")
    # use_cpu would make transformers drop DeepSpeed and run plain DDP.
    training.setdefault("use_cpu", not on_deepspeed)
    if on_deepspeed:  # DeepSpeed on CPU needs the gloo backend and fp32
        training.setdefault("ddp_backend", "gloo")
        training.setdefault("bf16", False)
    if "gradient_checkpointing" not in training:  # transformers 5 renamed it; either spelling wins
        training.setdefault("activation_checkpointing", False)
    training.setdefault("bf16", cpu_supports_bf16())


def reward_stage(cfg: StageConfig):
    """What the stage decides for its rewards: template, completion budget (GRPO's
    ``max_completion_length``; a data stage's ``max_new_tokens``), the task's gold columns."""
    from rewards.base import StageContext

    budget = getattr(cfg.training, "max_completion_length", None) or getattr(cfg.training, "max_new_tokens", None)
    return StageContext(
        template=cfg.data.template,
        max_completion_length=budget,
        columns=get_task(cfg.data.task).reward_columns,
    )


def task_gold_columns(task: str) -> tuple[str, ...]:
    """The dataset columns holding a task's gold values (logged beside each completion)."""
    return get_task(task).gold_columns


def validate_rewards(cfg: StageConfig) -> list:
    """The stage's ``rewards:`` list as typed entries (``rewards.entries.RewardEntry``), checked
    against the stage before any model loads: names, weights, routing, every option, and options
    that contradict the stage. Errors are ConfigErrors naming the recipe and ``rewards[i]``."""
    import rewards.errors
    from rewards.entries import parse_entries

    try:
        return parse_entries(cfg.recipe.rewards, cfg.source, reward_stage(cfg))
    except rewards.errors.ConfigError as error:
        raise ConfigError(str(error)) from None


def construct(cls, kwargs: dict[str, Any], source: str):
    """``cls(**kwargs)``, turning the dataclass's own validation errors into ConfigErrors."""
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{source}: invalid {cls.__name__} settings: {error}") from None
