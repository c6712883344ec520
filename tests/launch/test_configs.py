"""The launch configs parse with the parsers that will read them: accelerate's config classes and
launch command, DeepSpeed's config models, and transformers' "auto" filling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

LAUNCH = Path(__file__).resolve().parents[2] / "launch"
ACCELERATE_CONFIGS = {"ddp": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp": "FSDP"}
DEEPSPEED_CONFIGS = {"zero2": (2, "none"), "zero3": (3, "none"), "zero3_offload": (3, "cpu")}

# The keys transformers' HfTrainerDeepSpeedConfig fills from TrainingArguments when set to "auto"
# (transformers/integrations/deepspeed.py: trainer_config_process / trainer_config_finalize).
HF_AUTO_KEYS = {
    "train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size", "gradient_clipping",
    "bf16.enabled", "fp16.enabled", "optimizer.params.lr", "optimizer.params.betas", "optimizer.params.eps",
    "optimizer.params.weight_decay", "zero_optimization.reduce_bucket_size",
    "zero_optimization.stage3_prefetch_bucket_size", "zero_optimization.stage3_param_persistence_threshold",
}
# Stand-ins for "auto" so DeepSpeed's own validation can run here, as after transformers filled them.
AUTO_VALUES = {"bf16.enabled": True, "fp16.enabled": False, "train_batch_size": 16, "optimizer.params.betas": [0.9, 0.999]}


def test_every_config_is_covered():
    assert {p.stem for p in (LAUNCH / "accelerate").glob("*.yaml")} == set(ACCELERATE_CONFIGS)
    assert {p.stem for p in (LAUNCH / "deepspeed").glob("*.json")} == set(DEEPSPEED_CONFIGS)


@pytest.mark.parametrize("name", sorted(ACCELERATE_CONFIGS))
def test_accelerate_config_loads_with_accelerates_classes(name):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    path = LAUNCH / "accelerate" / f"{name}.yaml"
    config = load_config_from_file(str(path))  # raises on keys ClusterConfig does not know
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type.value == ACCELERATE_CONFIGS[name]
    assert (config.num_machines, config.machine_rank, config.use_cpu) == (1, 0, False)


@pytest.mark.parametrize("name", sorted(ACCELERATE_CONFIGS))
def test_accelerate_nested_keys_are_launch_arguments(name):
    """accelerate copies deepspeed_config/fsdp_config entries onto its launch arguments without
    checking them, so a misspelt key would be silently ignored: check them against the parser."""
    from accelerate.commands.launch import launch_command_parser

    known = {action.dest for action in launch_command_parser()._actions}
    raw = yaml.safe_load((LAUNCH / "accelerate" / f"{name}.yaml").read_text())
    nested = list(raw.get("deepspeed_config", {})) + list(raw.get("fsdp_config", {}))
    assert set(nested) <= known, set(nested) - known


@pytest.mark.parametrize(
    "name, flags",
    [
        ("ddp", {"multi_gpu": True, "use_deepspeed": False, "use_fsdp": False}),
        ("zero2", {"use_deepspeed": True, "zero_stage": 2, "zero3_init_flag": False}),
        ("zero3", {"use_deepspeed": True, "zero_stage": 3, "zero3_init_flag": True, "zero3_save_16bit_model": True}),
        ("fsdp", {"use_fsdp": True, "fsdp_version": 2, "fsdp_state_dict_type": "FULL_STATE_DICT"}),
    ],
)
def test_accelerate_launch_reads_config_and_command_line_wins(name, flags):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    argv = ["--config_file", str(LAUNCH / "accelerate" / f"{name}.yaml"), "--num_processes", "16",
            "--num_machines", "2", "--machine_rank", "1", "train.py"]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    assert {key: getattr(args, key) for key in flags} == flags
    assert (args.num_processes, args.num_machines, args.machine_rank) == (16, 2, 1)
    assert args.mixed_precision == "bf16"


def dotted_items(mapping: dict, prefix: str = ""):
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from dotted_items(value, path + ".")
        else:
            yield path, value


def fill_autos(mapping: dict, prefix: str = "") -> dict:
    filled = {}
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            filled[key] = fill_autos(value, path + ".")
        else:
            filled[key] = AUTO_VALUES.get(path, 4) if value == "auto" else value
    return filled


def deepspeed_top_level_keys() -> set[str]:
    """Every top-level key name DeepSpeed's config reader defines a constant for."""
    import deepspeed.runtime.constants as constants
    import deepspeed.runtime.zero.config as zero_config

    names = set()
    for module in (constants, zero_config):
        names |= {value for key, value in vars(module).items()
                  if key.isupper() and isinstance(value, str) and value.isidentifier()}
    return names


@pytest.mark.parametrize("name", sorted(DEEPSPEED_CONFIGS))
def test_deepspeed_json_parses_with_deepspeeds_config(name):
    pytest.importorskip("deepspeed", reason="pip install 'affect-rl[deepspeed]'")
    from deepspeed.runtime.config import DeepSpeedConfig

    raw = json.loads((LAUNCH / "deepspeed" / f"{name}.json").read_text())
    assert set(raw) <= deepspeed_top_level_keys()
    autos = {path for path, value in dotted_items(raw) if value == "auto"}
    assert autos <= HF_AUTO_KEYS, autos - HF_AUTO_KEYS
    assert "train_micro_batch_size_per_gpu" in autos and "gradient_accumulation_steps" in autos  # recipe decides

    config = DeepSpeedConfig(fill_autos(raw))  # pydantic models: unknown zero_optimization keys raise
    stage, offload = DEEPSPEED_CONFIGS[name]
    assert config.zero_optimization_stage == stage
    for offloaded in (config.zero_config.offload_optimizer, config.zero_config.offload_param):
        assert getattr(offloaded, "device", "none") == offload  # a str enum: equals "cpu"
    if stage == 3:
        assert config.zero_config.gather_16bit_weights_on_model_save  # a loadable model.safetensors at save


def test_deepspeed_config_rejects_a_misspelt_key():
    """The check above can fail: DeepSpeed refuses unknown zero_optimization keys."""
    pytest.importorskip("deepspeed")
    from deepspeed.runtime.config import DeepSpeedConfig

    raw = fill_autos(json.loads((LAUNCH / "deepspeed" / "zero2.json").read_text()))
    raw["zero_optimization"]["overlap_com"] = True
    with pytest.raises(Exception, match="overlap_com"):
        DeepSpeedConfig(raw)
