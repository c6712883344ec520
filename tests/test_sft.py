"""The SFT stage on a tiny random Llama with SmolLM2's tokenizer."""

import torch

from affect_rl import sft
from affect_rl.config import build_stage_config



def tiny_sft_config(model_dir, data_file, output_dir, **extra):
    values = {
        "model_name_or_path": model_dir, "dataset": data_file, "task": "emotion", "template": "r1",
        "test_size": 0.25, "output_dir": str(output_dir), "per_device_train_batch_size": 3,
        "learning_rate": 1e-2, "max_steps": 8, "logging_steps": 1, "save_strategy": "no",
        "report_to": "none", "num_sample_prompts": 0, "bf16": False, "seed": 0,
    }
    values.update(extra)
    return build_stage_config("sft", values, "test")


def test_sft_lowers_loss_changes_weights_and_saves(tiny_model_dir, emotion_file, tmp_path):
    from transformers import AutoModelForCausalLM

    before = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    trainer = sft.train(tiny_sft_config(tiny_model_dir, emotion_file, tmp_path / "out"))
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses[-1] < losses[0] - 2.0  # nats: a real drop, not noise
    after = AutoModelForCausalLM.from_pretrained(tmp_path / "out").state_dict()
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert len(changed) >= len(before) // 2
    assert (tmp_path / "out" / "trainer_state.json").is_file()


def test_only_completion_tokens_carry_loss(tiny_model_dir, emotion_file, tmp_path):
    from trl import SFTTrainer

    cfg = tiny_sft_config(tiny_model_dir, emotion_file, tmp_path / "out", max_steps=1)
    from affect_rl.data import load_splits, to_sft_dataset
    from affect_rl.models import load_tokenizer

    dataset = to_sft_dataset(load_splits(cfg.data)["train"], cfg.data)
    tokenizer = load_tokenizer(tiny_model_dir, padding_side="right")
    trainer = SFTTrainer(model=tiny_model_dir, args=cfg.training, train_dataset=dataset, processing_class=tokenizer)
    example = trainer.train_dataset[0]
    labels = trainer.data_collator([example])["labels"][0]
    input_ids = torch.tensor(example["input_ids"])
    carries_loss = labels != -100
    assert carries_loss.any() and not carries_loss.all()
    first_loss_position = int(carries_loss.nonzero()[0])
    assert not carries_loss[:first_loss_position].any() and carries_loss[first_loss_position:].all()
    prompt = tokenizer.decode(input_ids[:first_loss_position])
    completion = tokenizer.decode(input_ids[carries_loss])
    assert "Situation:" in prompt and "<think>" in prompt  # the user turn, and the system prompt's format
    assert completion.startswith("<think>") and "<answer>" in completion and "</answer>" in completion


def test_lora_sft_trains_only_the_adapter(tiny_model_dir, emotion_file, tmp_path):
    cfg = tiny_sft_config(tiny_model_dir, emotion_file, tmp_path / "lora", use_peft=True, lora_r=4,
                          lora_alpha=8, lora_target_modules=["q_proj", "v_proj"], max_steps=3)
    trainer = sft.train(cfg)
    trainable = [name for name, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    assert (tmp_path / "lora" / "adapter_config.json").is_file()
