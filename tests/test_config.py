import pytest

from affect_rl import config, config_values
from affect_rl.cli import main
from affect_rl.errors import ConfigError, EnvironmentProblem

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


@pytest.mark.parametrize("key, value, message", [
    ("learning_rate", "nan", r"'learning_rate' must be a finite number, got nan"),
    ("learning_rate", "inf", r"'learning_rate' must be a finite number, got inf"),
    ("max_grad_norm", "-inf", r"'max_grad_norm' must be a finite number, got -inf"),
    ("weight_decay", "NaN", r"'weight_decay' must be a finite number"),
    ("per_device_train_batch_size", "0", r"'per_device_train_batch_size' must be positive, got 0"),
    ("gradient_accumulation_steps", "-2", r"'gradient_accumulation_steps' must be positive, got -2"),
    ("num_train_epochs", "0", r"'num_train_epochs' must be positive, got 0.0"),
    ("max_steps", "0", r"'max_steps' must be -1 \(train for num_train_epochs\) or at least 1, got 0"),
    ("max_steps", "-5", r"'max_steps' must be -1 .* got -5"),
    ("warmup_steps", "-1", r"'warmup_steps' must be 0 or more, got -1.0"),
    ("max_length", "0", r"'max_length' must be positive, got 0"),
    ("lora_r", "0", r"'lora_r' must be positive"),
    ("max_train_samples", "0", r"'max_train_samples' must be positive"),
])
def test_non_finite_numbers_and_non_positive_sizes_are_config_errors(key, value, message):
    with pytest.raises(ConfigError, match=message):
        config.load_stage_config("sft", SFT_RECIPE, [f"--{key}", value])


@pytest.mark.parametrize("key, value, message", [
    ("num_generations", "0", r"'num_generations' must be positive, got 0"),
    ("max_completion_length", "-1", r"'max_completion_length' must be positive"),
    ("temperature", "0", r"GRPO samples a group of completions per prompt, so temperature must be above 0"),
    ("temperature", "-0.5", r"'temperature' must be 0 or more"),
    ("beta", "nan", r"'beta' must be a finite number"),
])
def test_grpo_sizes_and_numbers_are_checked(key, value, message):
    with pytest.raises(ConfigError, match=message):
        config.load_stage_config("grpo", GRPO_RECIPE, [f"--{key}", value])


def test_valid_edge_values_are_kept():
    cfg = config.load_stage_config("sft", SFT_RECIPE, ["--max_steps", "-1", "--warmup_steps", "0",
                                                       "--logging_steps", "0.1", "--max_steps=1"])
    assert (cfg.training.max_steps, cfg.training.warmup_steps, cfg.training.logging_steps) == (1, 0, 0.1)


def test_a_fractional_max_steps_in_yaml_is_not_rounded(tmp_path):
    recipe = tmp_path / "steps.yaml"
    recipe.write_text("max_steps: 1.5\n")
    with pytest.raises(ConfigError, match=r"steps\.yaml: 'max_steps' expects int, got 1\.5 \(float\)"):
        config.load_stage_config("sft", str(recipe))
    recipe.write_text("max_steps: 2.0\n")  # a whole float is still a whole number of steps
    assert config.load_stage_config("sft", str(recipe)).training.max_steps == 2


def test_a_duplicated_yaml_key_names_the_key_and_both_lines(tmp_path):
    recipe = tmp_path / "twice.yaml"
    recipe.write_text("task: emotion\nlearning_rate: 1e-4\nmax_steps: 3\nlearning_rate: 1e-3\n")
    with pytest.raises(ConfigError, match=r"twice\.yaml: duplicated key 'learning_rate' on line 4 \(first on line 2\)"):
        config.load_stage_config("sft", str(recipe))
    nested = tmp_path / "nested.yaml"
    nested.write_text("rewards:\n  - name: format\n    weight: 1\n    weight: 2\n")
    with pytest.raises(ConfigError, match=r"duplicated key 'weight' on line 4 \(first on line 3\)"):
        config.load_stage_config("grpo", str(nested))
    # YAML merge keys may override what they merge in
    assert config_values.load_yaml("a: &x {k: 1}\nb:\n  <<: *x\n  k: 2\n") == {"a": {"k": 1}, "b": {"k": 2}}


def test_nan_inf_filter_is_off_by_default_so_a_nan_loss_reaches_the_log():
    assert config.load_stage_config("sft", SFT_RECIPE).training.logging_nan_inf_filter is False
    assert config.load_stage_config("sft", SFT_RECIPE, ["--logging_nan_inf_filter", "true"]
                                    ).training.logging_nan_inf_filter is True


@pytest.mark.parametrize("overrides, error, message", [
    (["--load_in_4bit", "true"], ConfigError, r"load_in_4bit needs use_peft: true"),
    (["--load_in_4bit", "true", "--load_in_8bit", "true"], ConfigError, r"load_in_4bit and load_in_8bit are exclusive"),
    (["--load_in_8bit", "true", "--use_peft", "true"], EnvironmentProblem,
     r"load_in_8bit: true cannot run here: .*no CUDA GPU is visible.*Remove load_in_8bit"),
])
def test_quantization_is_checked_before_loading(monkeypatch, overrides, error, message):
    monkeypatch.setattr(config, "cuda_available", lambda: False)
    with pytest.raises(error, match=message):
        config.load_stage_config("sft", SFT_RECIPE, overrides)


def test_deepspeed_on_cpu_defaults_to_gloo_fp32_and_keeps_deepspeed(monkeypatch):
    monkeypatch.setattr(config, "cuda_available", lambda: False)
    monkeypatch.setattr(config, "cpu_supports_bf16", lambda: True)
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    training = {}
    config.apply_hardware_defaults(training)
    assert training == {"use_cpu": False, "ddp_backend": "gloo", "bf16": False, "activation_checkpointing": False}
    explicit = {"bf16": True, "ddp_backend": "ccl"}  # explicit values still win
    config.apply_hardware_defaults(explicit)
    assert (explicit["bf16"], explicit["ddp_backend"], explicit["use_cpu"]) == (True, "ccl", False)
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "false")
    plain = {}
    config.apply_hardware_defaults(plain)
    assert plain == {"use_cpu": True, "activation_checkpointing": False, "bf16": True}
