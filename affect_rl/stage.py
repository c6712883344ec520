"""What every training stage does around ``trainer.train()``: load its data, resume, save, show samples."""

from __future__ import annotations

import logging
from pathlib import Path

from affect_rl.tracking import tracking_summary

logger = logging.getLogger(__name__)


def load_stage_data(cfg):
    """The stage's train and held-out splits, loaded on the main process first (under accelerate the
    other ranks then read the cache); the held-out rows and training fingerprints are saved beside
    the model (``affect_rl.data.heldout``), so a later eval scores exactly the rows held out."""
    from accelerate import PartialState

    from affect_rl.data import load_splits
    from affect_rl.data.heldout import save_stage_rows
    from affect_rl.data.media import check_text_model_rows, check_vision_model_rows
    from affect_rl.models import is_vision_language

    state = PartialState()
    with state.main_process_first():
        splits = load_splits(cfg.data)
    if is_vision_language(cfg.model.model_name_or_path):  # every image opens and fits, before training
        for rows in splits.values():
            check_vision_model_rows(rows, cfg.model.model_name_or_path)
    else:
        check_text_model_rows(splits["train"], cfg.model.model_name_or_path)
    if state.is_main_process:
        save_stage_rows(splits["train"], splits["test"], cfg.training.output_dir)
    return splits


def resume_checkpoint(training_args) -> str | None:
    """The checkpoint to resume from: ``resume_from_checkpoint: last`` (or true) picks the newest
    ``checkpoint-*`` in the output folder, if any; a path is used as given."""
    from transformers.trainer_utils import get_last_checkpoint

    requested = training_args.resume_from_checkpoint
    if requested in (None, False, "", "false", "False"):
        return None
    if requested in (True, "true", "True", "last"):
        output_dir = Path(training_args.output_dir)
        return get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    return requested


def finish_stage(trainer, cfg, test_rows) -> None:
    """Save the final model, tokenizer and log history; print samples and tracking hints."""
    from affect_rl.data import render_prompt
    from affect_rl.data.media import row_images
    from affect_rl.samples import format_samples, generate_samples

    trainer.save_model(cfg.training.output_dir)
    count = min(cfg.recipe.num_sample_prompts, len(test_rows))
    # Every rank generates: under ZeRO-3 each holds a shard, and generation gathers them.
    prompts = [render_prompt(test_rows[i], cfg.data.task, cfg.data.template, cfg.data.system_prompt,
                             cfg.data.label_set) for i in range(count)]
    images = [row_images(test_rows[i]) for i in range(count)]
    completions = generate_samples(trainer.model, trainer.processing_class, prompts, images) if count else []
    if not trainer.is_world_process_zero():
        return
    trainer.state.save_to_json(str(Path(cfg.training.output_dir) / "trainer_state.json"))
    if completions:
        print(format_samples(prompts, completions, f"{cfg.stage.upper()} samples on held-out prompts"))
    print(f"Saved the {cfg.stage} model to {cfg.training.output_dir}")
    for line in tracking_summary(cfg.training):
        print(line)
