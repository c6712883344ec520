import pytest

from affect_rl import config
from affect_rl.cli import main
from affect_rl.errors import ConfigError

SFT_RECIPE = "recipes/demo/sft.yaml"
GRPO_RECIPE = "recipes/demo/grpo.yaml"


def test_demo_sft_recipe_parses_into_trl_dataclasses():
    cfg = config.load_stage_config("sft", SFT_RECIPE)
    assert type(cfg.training).__name__ == "SFTConfig"
    assert cfg.training.learning_rate == 1e-4
    assert cfg.model.model_name_or_path == "smollm2-135m-instruct"
    assert (cfg.data.dataset, cfg.data.task, cfg.data.template) == ("demo:emotion", "emotion", "r1")


def test_command_line_overrides_win_over_yaml():
    cfg = config.load_stage_config("sft", SFT_RECIPE, ["--learning_rate", "1e-4", "--max_steps=5", "--use_peft"])
    assert cfg.training.learning_rate == 1e-4
    assert cfg.training.max_steps == 5
    assert cfg.model.use_peft is True


def test_cpu_defaults_turn_off_checkpointing_and_follow_cpu_bf16(monkeypatch):
    monkeypatch.setattr(config, "cuda_available", lambda: False)
    for supports_bf16 in (True, False):
        monkeypatch.setattr(config, "cpu_supports_bf16", lambda: supports_bf16)
        cfg = config.load_stage_config("sft", SFT_RECIPE)
        assert cfg.training.gradient_checkpointing is False
        assert cfg.training.use_cpu is True
        assert cfg.training.bf16 is supports_bf16


def test_explicit_values_beat_hardware_defaults(monkeypatch):
    monkeypatch.setattr(config, "cuda_available", lambda: False)
    cfg = config.load_stage_config("sft", SFT_RECIPE, ["--gradient_checkpointing", "true", "--bf16", "false"])
    assert cfg.training.gradient_checkpointing is True and cfg.training.bf16 is False


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError, match="'learnin_rate'.*Did you mean 'learning_rate'"):
        config.load_stage_config("sft", SFT_RECIPE, ["--learnin_rate", "1e-4"])


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("task: emotion\nnum_train_epoch: 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*'num_train_epoch'.*num_train_epochs"):
        config.load_stage_config("sft", str(recipe))


@pytest.mark.parametrize("key, value, expected", [
    ("learning_rate", "fast", "float"),
    ("max_steps", "1.5", "int"),
    ("use_peft", "maybe", "bool"),
])
def test_wrong_type_names_key_and_expected_type(key, value, expected):
    with pytest.raises(ConfigError, match=rf"'{key}' expects {expected}.*'{value}'"):
        config.load_stage_config("sft", SFT_RECIPE, [f"--{key}", value])


def test_yaml_type_error_names_the_file(tmp_path):
    recipe = tmp_path / "typed.yaml"
    recipe.write_text("per_device_train_batch_size: [8]\n")
    with pytest.raises(ConfigError, match=r"typed\.yaml.*'per_device_train_batch_size' expects int"):
        config.load_stage_config("sft", str(recipe))


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load_stage_config("sft", str(tmp_path / "nope.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load_stage_config("sft", str(broken))
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        config.load_stage_config("sft", str(listing))


def test_grpo_rewards_become_weights_and_are_checked_before_loading():
    cfg = config.load_stage_config("grpo", GRPO_RECIPE)
    assert cfg.training.reward_weights == [spec.get("weight", 1.0) for spec in cfg.recipe.rewards]
    with pytest.raises(ConfigError, match="rewards\\[1\\].*Unknown reward 'emotion_whel'.*emotion_wheel"):
        config.build_stage_config("grpo", {"rewards": [{"name": "emotion_whel"}]}, "x.yaml")
    with pytest.raises(ConfigError, match="no option 'levle'.*Did you mean 'level'"):
        config.build_stage_config("grpo", {"rewards": [{"name": "emotion_wheel", "levle": "level2"}]}, "x.yaml")
    with pytest.raises(ConfigError, match="needs `rewards:`"):
        config.build_stage_config("grpo", {}, "x.yaml")


def test_invalid_combination_from_trl_becomes_config_error():
    # GRPO needs the generation batch to be divisible by num_generations.
    with pytest.raises(ConfigError, match="x.yaml: invalid GRPOConfig"):
        config.build_stage_config("grpo", {"rewards": [{"name": "format"}], "per_device_train_batch_size": 3,
                                           "num_generations": 2}, "x.yaml")


def test_cli_prints_one_line_error_without_traceback(capsys):
    code = main(["sft", "--config", SFT_RECIPE, "--learnin_rate", "1e-4"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Did you mean 'learning_rate'" in err and "Traceback" not in err


def test_stage_list_keys_lists_affect_rl_keys(capsys):
    assert main(["sft", "--list-keys"]) == 0
    out = capsys.readouterr().out
    assert "column_mapping" in out and "SFTConfig" in out
