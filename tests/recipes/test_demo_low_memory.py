"""recipes/demo/low_memory.yaml: the demo with each GRPO step's backward in 3 micro-batches (README "Memory")."""

from recipe_runs import plan_gpu_pipeline


def test_low_memory_demo_changes_only_how_grpo_splits_its_step():
    demo, low = plan_gpu_pipeline("demo"), plan_gpu_pipeline("demo", "low_memory.yaml")
    assert list(low) == list(demo) == ["sft", "grpo", "eval"]
    before, after = demo["grpo"].stage_config.training, low["grpo"].stage_config.training
    after_values = after.to_dict()
    changed = {key for key, value in before.to_dict().items() if after_values[key] != value}
    assert changed == {"per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation", "run_name"}
    assert (after.per_device_train_batch_size, after.gradient_accumulation_steps) == (16, 3)
    # each step still learns from 48 completions (12 prompts x 4), with the same rewards, data and model
    assert after.generation_batch_size == before.generation_batch_size == 48
    for part in ("recipe", "data", "model"):
        assert getattr(low["grpo"].stage_config, part) == getattr(demo["grpo"].stage_config, part)
    assert low["eval"].config == demo["eval"].config
