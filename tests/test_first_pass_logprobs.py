"""Old log-probabilities from each rollout's first pass (affect_rl/first_pass_logprobs.py): the same
training as TRL's extra forward, with one forward fewer per rollout."""

import pytest
import torch
from tiny_recipes import A_FEW_STEPS, tiny_grpo_trainer
from transformers import AutoModelForCausalLM
from trl import GRPOTrainer

from affect_rl.first_pass_logprobs import applies, reuse_first_pass_logprobs

SETTINGS = {**A_FEW_STEPS, "learning_rate": 3e-2, "num_generations": 4, "max_steps": 4, "num_iterations": 2,
            "fast_rollouts": False, "share_prompts": False}


def trainer_for(model_dir, data_file, output_dir, **extra):
    return tiny_grpo_trainer(model_dir, data_file, output_dir, **{**SETTINGS, **extra})


def train_counting_forwards(trainer, calls: list) -> tuple[int, dict[str, torch.Tensor], list[float]]:
    """Train; return the number of log-probability forwards, the final weights and the logged losses."""
    calls.clear()
    torch.manual_seed(0)  # the same completions for both trainers
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return len(calls), {name: p.detach().clone() for name, p in trainer.model.named_parameters()}, losses


def test_first_pass_logprobs_train_as_trl_with_one_forward_fewer_per_rollout(peaked_model_dir, emotion_file,
                                                                             tmp_path, eos_bias, monkeypatch):
    calls = []
    forward = GRPOTrainer._get_per_token_logps_and_entropies
    monkeypatch.setattr(GRPOTrainer, "_get_per_token_logps_and_entropies",
                        lambda *args, **kwargs: calls.append(1) or forward(*args, **kwargs))
    shipped = trainer_for(peaked_model_dir, emotion_file, tmp_path / "trl", generation_kwargs=eos_bias)
    reused = trainer_for(peaked_model_dir, emotion_file, tmp_path / "reused", generation_kwargs=eos_bias)
    assert reuse_first_pass_logprobs(reused)
    shipped_forwards, shipped_weights, shipped_losses = train_counting_forwards(shipped, calls)
    reused_forwards, reused_weights, reused_losses = train_counting_forwards(reused, calls)

    # 2 rollouts x (TRL: 1 old-log-prob forward + 2 loss forwards; reused: 2 loss forwards)
    assert (shipped_forwards, reused_forwards) == (6, 4)
    assert reused_losses == pytest.approx(shipped_losses, abs=1e-5)
    for name, weight in reused_weights.items():
        torch.testing.assert_close(weight, shipped_weights[name], rtol=1e-5, atol=1e-6, msg=name)
    # the second pass of each rollout saw a policy one update away from the old one: the ratio mattered
    start = AutoModelForCausalLM.from_pretrained(peaked_model_dir)
    assert max((p - reused_weights[n]).abs().max().item() for n, p in start.named_parameters()) > 1e-3


@pytest.mark.parametrize("settings, expected", [
    ({}, True),
    ({"num_iterations": 1}, False),  # TRL already reuses the loss's own forward
    ({"steps_per_generation": 2}, False),  # the second batch of a rollout would come after an update
])
def test_reuse_applies_only_where_the_first_pass_runs_on_the_old_policy(peaked_model_dir, emotion_file, tmp_path,
                                                                        settings, expected):
    trainer = trainer_for(peaked_model_dir, emotion_file, tmp_path, **settings)
    assert applies(trainer.args) is expected
