"""SFT stage: teach the reasoning template on labelled rows with TRL's SFTTrainer.

Rows are rendered into prompt-completion chat pairs (the completion is the template filled
from the row's rationale and labels), so the loss falls on the completion only.

    affect-rl sft --config recipes/demo/sft.yaml [--key value ...]
    accelerate launch --config_file launch/accelerate/ddp.yaml -m affect_rl.cli sft --config FILE
"""

from __future__ import annotations

from affect_rl.config import StageConfig
from affect_rl.cpu_speedups import score_labelled_positions_only
from affect_rl.data import load_splits, to_sft_dataset
from affect_rl.models import load_causal_lm, load_tokenizer
from affect_rl.stage import finish_stage, resume_checkpoint
from affect_rl.tracking import prepare_tracking


def train(cfg: StageConfig):
    """Run the SFT stage described by ``cfg``; returns the trainer after saving the model."""
    from trl import SFTTrainer
    from trl.trainer.utils import get_peft_config

    splits = load_splits(cfg.data)
    train_dataset = to_sft_dataset(splits["train"], cfg.data.task, cfg.data.template, cfg.data.system_prompt)
    eval_dataset = None
    if cfg.training.eval_strategy != "no" and len(splits["test"]):
        eval_dataset = to_sft_dataset(splits["test"], cfg.data.task, cfg.data.template, cfg.data.system_prompt)

    prepare_tracking(cfg)
    model, _ = load_causal_lm(cfg.model, merge_adapter=cfg.recipe.merge_adapter)
    tokenizer = load_tokenizer(cfg.model.model_name_or_path, padding_side="right")
    score_labelled_positions_only()
    trainer = SFTTrainer(
        model=model,
        args=cfg.training,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=get_peft_config(cfg.model),
    )
    trainer.train(resume_from_checkpoint=resume_checkpoint(cfg.training))
    finish_stage(trainer, cfg, splits["test"])
    return trainer
