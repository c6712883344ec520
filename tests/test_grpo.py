"""The GRPO stage on a tiny random Llama with SmolLM2's tokenizer."""

import shutil

import pytest
import torch

from affect_rl import grpo
from affect_rl.config import build_stage_config
from affect_rl.errors import EnvironmentProblem
from rewards.base import Reward

REWARDS = [{"name": "emotion_wheel", "weight": 1.0}, {"name": "format", "weight": 0.2},
           {"name": "length", "weight": 0.1, "buffer": 4}, {"name": "vowels", "weight": 1.0}]  # max_length: the stage's 12


class Vowels(Reward):
    """Vowels per completion / 10: varies across random text (the real rewards score a random
    model's output 0 everywhere, which leaves GRPO no advantage to follow)."""

    name, summary, value_range, source = "vowels", "test", (0.0, 1000.0), "tests"

    def __init__(self):
        pass

    def __call__(self, prompts, completions, **kwargs):
        return [sum(ch in "aeiou" for ch in str(c)) / 10 for c in completions]


@pytest.fixture(autouse=True)
def vowel_reward(monkeypatch):
    from rewards import registry

    monkeypatch.setitem(registry._REGISTRY, "vowels", Vowels)


def tiny_grpo_values(model_dir, data_file, output_dir, **extra):
    values = {
        "model_name_or_path": model_dir, "dataset": data_file, "task": "emotion", "template": "r1",
        "test_size": 0.2, "rewards": REWARDS, "output_dir": str(output_dir), "learning_rate": 1e-2,
        "per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 12, "max_steps": 2,
        "logging_steps": 1, "save_strategy": "no", "report_to": "none", "num_sample_prompts": 0,
        "bf16": False, "seed": 0,
    }
    values.update(extra)
    return values


def test_grpo_changes_weights_and_logs_every_reward(tiny_model_dir, emotion_file, tmp_path):
    from transformers import AutoModelForCausalLM

    before = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    cfg = build_stage_config("grpo", tiny_grpo_values(tiny_model_dir, emotion_file, tmp_path / "out"), "test")
    trainer = grpo.train(cfg)
    after = AutoModelForCausalLM.from_pretrained(tmp_path / "out").state_dict()
    assert any(not torch.equal(before[name], after[name]) for name in before)
    logged = {key for entry in trainer.state.log_history for key in entry}
    for reward in ("emotion_wheel", "format", "length"):
        assert f"rewards/{reward}/mean" in logged
    assert {"hacking/format_failure_rate", "hacking/answer_list_length", "frac_reward_zero_std"} <= logged
    failure_rates = [e["hacking/format_failure_rate"] for e in trainer.state.log_history
                     if "hacking/format_failure_rate" in e]
    assert all(0.0 <= rate <= 1.0 for rate in failure_rates)


def test_grpo_with_lora_trains_only_the_adapter(tiny_model_dir, emotion_file, tmp_path):
    values = tiny_grpo_values(tiny_model_dir, emotion_file, tmp_path / "lora", use_peft=True, lora_r=4,
                              lora_alpha=8, lora_target_modules=["q_proj", "v_proj"], max_steps=1)
    trainer = grpo.train(build_stage_config("grpo", values, "test"))
    trainable = [name for name, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)


def test_interrupted_grpo_resumes_at_the_same_global_step(tiny_model_dir, emotion_file, tmp_path):
    output_dir = tmp_path / "resume"
    first = tiny_grpo_values(tiny_model_dir, emotion_file, output_dir, max_steps=3, save_strategy="steps",
                             save_steps=1, resume_from_checkpoint="last")
    grpo.train(build_stage_config("grpo", first, "test"))
    # As if the run had died before step 3: a resumed trainer starts at global step 2, not 0.
    shutil.rmtree(output_dir / "checkpoint-3")
    assert (output_dir / "checkpoint-2").is_dir()
    trainer = grpo.train(build_stage_config("grpo", first, "test"))
    steps = [entry["step"] for entry in trainer.state.log_history if "loss" in entry]
    assert steps == [1, 2, 3] and trainer.state.global_step == 3


def test_vllm_without_gpu_fails_before_loading_with_the_way_out(monkeypatch):
    monkeypatch.setattr(grpo, "cuda_available", lambda: False)
    cfg = build_stage_config("grpo", {"rewards": REWARDS, "use_vllm": True, "vllm_mode": "colocate"}, "test")
    with pytest.raises(EnvironmentProblem, match="no CUDA GPU.*use_vllm: false"):
        grpo.train(cfg)


def test_vllm_recipe_fields_reach_grpo_config():
    values = {"rewards": REWARDS, "use_vllm": True, "vllm_mode": "server", "vllm_server_host": "10.0.0.7",
              "vllm_server_port": 8001, "vllm_gpu_memory_utilization": 0.5, "vllm_tensor_parallel_size": 2}
    cfg = build_stage_config("grpo", values, "test")
    training = cfg.training
    assert (training.use_vllm, training.vllm_mode) == (True, "server")
    assert (training.vllm_server_host, training.vllm_server_port) == ("10.0.0.7", 8001)
    assert (training.vllm_gpu_memory_utilization, training.vllm_tensor_parallel_size) == (0.5, 2)
