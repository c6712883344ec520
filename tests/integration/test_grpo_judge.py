"""The rubric reward as an async reward function inside affect-rl's GRPO stage, against the real local judge."""

from __future__ import annotations

import json

import pytest

from affect_rl import grpo
from affect_rl.config import build_stage_config

pytestmark = pytest.mark.slow

ROWS = [
    {"messages": [{"role": "user", "content": "My dog died yesterday and the house feels empty."}],
     "persona": "a retired teacher", "emotion": "sad", "split": "train"},
    {"messages": [{"role": "user", "content": "I got the job I wanted after eight interviews!"}],
     "persona": "a nurse", "emotion": "happy", "split": "train"},
    {"messages": [{"role": "user", "content": "My flatmate keeps eating my food."}],
     "persona": "a student", "emotion": "angry", "split": "test"},
]


def test_grpo_stage_awaits_the_judge(judge_server, tiny_model_dir, tmp_path):
    from trl.trainer.utils import is_async_callable

    data = tmp_path / "empathy.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    # A random model writes no <response> span; judge its whole output so the server is asked.
    rubric = {"name": "rubric", "weight": 1.0, "rubric": "empathy", "span": "all",
              "base_url": judge_server.base_url, "base_url_env": "", "model": judge_server.model,
              "max_tokens": 40, "max_concurrency": 4, "timeout": 300.0, "on_error": "skip"}
    values = {"model_name_or_path": tiny_model_dir, "dataset": str(data), "task": "empathy", "template": "kardia",
              "rewards": [rubric, {"name": "format", "weight": 0.2, "template": "kardia"}],
              "output_dir": str(tmp_path / "out"), "per_device_train_batch_size": 4, "num_generations": 4,
              "max_completion_length": 8, "max_steps": 1, "learning_rate": 1e-3, "logging_steps": 1,
              "save_strategy": "no", "report_to": "none", "bf16": False, "num_sample_prompts": 0, "seed": 0}
    trainer = grpo.train(build_stage_config("grpo", values, "test"))

    judge_reward = trainer.reward_funcs[0]
    assert is_async_callable(judge_reward)
    assert trainer.state.global_step == 1
    stats = judge_reward.judge.stats
    assert stats.samples == 4 and stats.requests >= 1
    assert stats.request_failures == 0, [sample.error for sample in judge_reward.judge.last_batch]
    logged = {key for entry in trainer.state.log_history for key in entry}
    # TRL logs the reward under its name, our judge metrics through log_metric, and the
    # diagnostics ride on the synchronous format reward.
    assert {"rewards/rubric/mean", "rewards/format/mean", "hacking/format_failure_rate"} <= logged
    assert "judge/empathy/latency_s" in logged and "judge/empathy/cache_hit_rate" in logged
