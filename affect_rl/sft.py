"""SFT stage: teach the reasoning template on labelled rows with TRL's SFTTrainer.

From Python (``affect_rl.api``): ``sft.run("recipes/demo/sft.yaml", max_steps=5)``, or
``sft.run({"task": "emotion", ...}, train_dataset=rows)`` with your own rows.

Rows are rendered into prompt-completion chat pairs (the completion is the row's own
``completion`` when it has one, else the template filled from its rationale and labels), so the
loss falls on the completion only. Rows with images train a vision-language model through its
processor (LoRA on the language model; the recipe's train_vision_tower / train_projector).

    affect-rl sft --config recipes/demo/sft.yaml [--key value ...]
    accelerate launch --config_file launch/accelerate/ddp.yaml -m affect_rl.cli sft --config FILE
"""

from __future__ import annotations

from affect_rl.config import StageConfig
from affect_rl.cpu_speedups import score_labelled_positions_only
from affect_rl.data import to_sft_dataset
from affect_rl.models import load_causal_lm, load_processing_class, training_setup
from affect_rl.stage import begin_stage, finish_stage, load_stage_data, run_training, speed_up_loss_on_cpu
from affect_rl.tracking import prepare_tracking


def run(config=None, *, train_dataset=None, heldout_dataset=None, **keys):
    """Run SFT from a recipe dict, a YAML path or a StageConfig (``keys`` override recipe keys),
    on the recipe's data or on ``train_dataset`` / ``heldout_dataset``; returns the trainer."""
    from affect_rl.api import stage_config

    cfg = stage_config("sft", config, rows_given=train_dataset is not None, **keys)
    return train(cfg, train_dataset=train_dataset, heldout_dataset=heldout_dataset)


def train(cfg: StageConfig, train_dataset=None, heldout_dataset=None):
    """Run the SFT stage described by ``cfg``; returns the trainer after saving the model."""
    from trl import SFTTrainer

    begin_stage(cfg)
    splits = load_stage_data(cfg, train_dataset, heldout_dataset)
    report = {}
    train_dataset = to_sft_dataset(splits["train"], cfg.data, report)
    if report["skipped"]:
        print(f"SFT: skipped {len(report['skipped'])} of {len(splits['train'])} rows whose completion does not match "
              f"the {cfg.data.template} template (first: {report['skipped'][0]})")
    eval_dataset = None
    if cfg.training.eval_strategy != "no" and len(splits["test"]):
        eval_dataset = to_sft_dataset(splits["test"], cfg.data)

    prepare_tracking(cfg)
    trust = cfg.training.trust_remote_code
    model, _ = load_causal_lm(cfg.model, merge_adapter=cfg.recipe.merge_adapter, trust_remote_code=trust)
    score_labelled_positions_only()
    trainer = SFTTrainer(
        model=model,
        args=cfg.training,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        # A vision-language model's processor: TRL then collates images into the user turn.
        processing_class=load_processing_class(cfg.model.model_name_or_path, padding_side="right",
                                               trust_remote_code=trust),
        peft_config=training_setup(model, cfg.model, cfg.recipe),
    )
    speed_up_loss_on_cpu(trainer, cfg)
    run_training(trainer, cfg)
    finish_stage(trainer, cfg, splits["test"])
    return trainer
