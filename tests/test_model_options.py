"""Model options from the recipe reach every load: trust_remote_code (off unless set)."""

import json

import pytest
from affect_rl.config import load_stage_config
from affect_rl.errors import ConfigError
from affect_rl.models import load_causal_lm


@pytest.fixture(scope="module")
def custom_code_model(tmp_path_factory, smollm2_tokenizer):
    """A one-layer Llama whose config.json points at the folder's own Python classes (auto_map),
    with SmolLM2's tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("custom-code-model")
    (folder / "configuration_tinycustom.py").write_text(
        "from transformers import LlamaConfig\n\n\nclass TinyCustomConfig(LlamaConfig):\n    model_type = 'tinycustom'\n")
    (folder / "modeling_tinycustom.py").write_text(
        "from transformers import LlamaForCausalLM\n\nfrom .configuration_tinycustom import TinyCustomConfig\n\n\n"
        "class TinyCustomForCausalLM(LlamaForCausalLM):\n    config_class = TinyCustomConfig\n    ran_own_code = True\n")
    LlamaForCausalLM(LlamaConfig(vocab_size=len(smollm2_tokenizer), hidden_size=16, intermediate_size=32,
                                 num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                 tie_word_embeddings=True)).save_pretrained(folder)
    smollm2_tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="tinycustom", auto_map={
        "AutoConfig": "configuration_tinycustom.TinyCustomConfig",
        "AutoModelForCausalLM": "modeling_tinycustom.TinyCustomForCausalLM"})
    (folder / "config.json").write_text(json.dumps(config))
    return str(folder)


def test_a_model_with_its_own_code_is_refused_unless_the_recipe_trusts_it(custom_code_model):
    cfg = load_stage_config("sft", "recipes/demo/sft.yaml", ["--model_name_or_path", custom_code_model])
    assert cfg.training.trust_remote_code is False
    with pytest.raises(ConfigError, match=r"ships its own Python code.*set `trust_remote_code: true`"):
        load_causal_lm(cfg.model, trust_remote_code=cfg.training.trust_remote_code)
    trusted = load_stage_config("sft", "recipes/demo/sft.yaml", ["--model_name_or_path", custom_code_model,
                                                                 "--trust_remote_code", "true"])
    model, _ = load_causal_lm(trusted.model, trust_remote_code=trusted.training.trust_remote_code)
    assert type(model).__name__ == "TinyCustomForCausalLM" and model.ran_own_code


@pytest.mark.slow
def test_the_sft_stage_passes_trust_remote_code_to_its_loads(custom_code_model, emotion_file, tmp_path):
    from affect_rl import sft

    overrides = ["--model_name_or_path", custom_code_model, "--dataset", emotion_file, "--max_steps", "1",
                 "--per_device_train_batch_size", "2", "--num_sample_prompts", "0", "--save_strategy", "no",
                 "--bf16", "false"]
    with pytest.raises(ConfigError, match="ships its own Python code"):
        sft.train(load_stage_config("sft", "recipes/demo/sft.yaml", [*overrides, "--output_dir", str(tmp_path / "a")]))
    trainer = sft.train(load_stage_config("sft", "recipes/demo/sft.yaml", [
        *overrides, "--output_dir", str(tmp_path / "b"), "--trust_remote_code", "true"]))
    assert trainer.state.global_step == 1 and type(trainer.model).__name__ == "TinyCustomForCausalLM"
