"""What every training stage does around ``trainer.train()``.

- :func:`load_stage_data`: the train and held-out splits, prepared on the main process first; the
  held-out rows and training fingerprints are saved beside the model.
- :func:`begin_stage` (before anything loads): lock the output folder, check that it was not
  written under another config (``affect_rl.run_identity``) and record this run's config there.
- :func:`run_training`: resume from the newest *complete* checkpoint, train with the health
  callbacks (``affect_rl.health``), and turn a NaN stop or a signal stop into an error.
- :func:`finish_stage`: save the final model into a staging folder and rename its files into
  place, so an interrupted save never leaves a half-written model; print samples.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

from affect_rl.checkpoints import checkpoint_problem, last_complete_checkpoint, set_aside_diverged_checkpoints
from affect_rl.errors import ConfigError, TrainingDiverged
from affect_rl.files import atomic_write_text, publish_folder
from affect_rl.health import CheckpointOnSignal, StopAfterSeconds, StopOnNonFinite, stop_file_from_env
from affect_rl.run_identity import check_identity, record_resume, resolved_config, write_identity
from affect_rl.run_lock import RunLock, is_main_rank
from affect_rl.tracking import tracking_summary

logger = logging.getLogger(__name__)

FINAL_STAGING = ".final-model.partial"
STANDALONE_ADVICE = ("move that folder aside (or pass another --output_dir) to train this config; "
                     "under `affect-rl pipeline`, --restart STAGE does it")
_locks: dict[str, RunLock] = {}


def begin_stage(cfg) -> None:
    """Before any model loads: lock ``output_dir``, refuse it if another config wrote it, record ours."""
    output_dir = Path(cfg.training.output_dir)
    check_resume_request(getattr(cfg.training, "resume_from_checkpoint", None))  # an align stage has none
    config = resolved_config(cfg)
    if not is_main_rank():
        check_identity(output_dir, config, STANDALONE_ADVICE)
        return
    lock = RunLock(output_dir).acquire()
    try:
        check_identity(output_dir, config, STANDALONE_ADVICE)
        write_identity(output_dir, config)
    except BaseException:
        lock.release()
        raise
    _locks[str(output_dir)] = lock


def end_stage(cfg) -> None:
    """Release the output folder's lock (also released when the process exits)."""
    lock = _locks.pop(str(Path(cfg.training.output_dir)), None)
    if lock is not None:
        lock.release()


def check_resume_request(requested) -> None:
    """An explicit ``resume_from_checkpoint: PATH`` must be a complete checkpoint."""
    if requested in (None, False, True, "", "false", "False", "true", "True", "last"):
        return
    problem = "it does not exist" if not Path(requested).is_dir() else checkpoint_problem(Path(requested))
    if problem:
        raise ConfigError(f"resume_from_checkpoint {requested!r} cannot be resumed: {problem}. Name a complete "
                          "checkpoint-N folder, or use `last` for the newest complete one.")


def load_stage_data(cfg, train_dataset=None, heldout_dataset=None):
    """The stage's train and held-out splits, loaded on the main process first (under accelerate the
    other ranks then read the cache); the held-out rows and training fingerprints are saved beside
    the model (``affect_rl.data.heldout``), so a later eval scores exactly the rows held out.

    ``train_dataset`` / ``heldout_dataset`` (the Python API: a ``datasets.Dataset`` or a list of
    rows in the task's columns) replace the recipe's source; they are checked like a file's rows."""
    from accelerate import PartialState

    from affect_rl.data import load_splits
    from affect_rl.data.heldout import save_stage_rows
    from affect_rl.data.media import check_model_rows
    from affect_rl.models import is_vision_language

    state = PartialState()
    with state.main_process_first():
        splits = load_splits(cfg.data) if train_dataset is None else given_splits(cfg, train_dataset, heldout_dataset)
    # Before training: a VLM's images all open and fit (held-out ones too); a text model gets no media.
    vision = is_vision_language(cfg.model.model_name_or_path, cfg.training.trust_remote_code)
    for rows in (splits["train"], splits["test"]) if vision else (splits["train"],):
        check_model_rows(rows, cfg.model.model_name_or_path, vision)
    if state.is_main_process:
        save_stage_rows(splits["train"], splits["test"], cfg.training.output_dir)
    return splits


def given_splits(cfg, train_dataset, heldout_dataset):
    """A DatasetDict of rows handed over by the Python API, checked against the stage's task."""
    from datasets import Dataset, DatasetDict

    from affect_rl.data import check_rows
    from affect_rl.data.loaders import to_dataset

    def checked(rows, name):
        return to_dataset(check_rows(list(rows), cfg.data.task, f"the {name} argument").rows) if rows else Dataset.from_dict({})

    return DatasetDict(train=checked(train_dataset, "train_dataset"), test=checked(heldout_dataset, "heldout_dataset"))


def resume_checkpoint(training_args) -> str | None:
    """The checkpoint to resume from: ``resume_from_checkpoint: last`` (or true) picks the newest
    complete ``checkpoint-N`` in the output folder, logging each newer incomplete one it skips;
    a path is used as given (``check_resume_request`` has checked it)."""
    requested = training_args.resume_from_checkpoint
    if requested in (None, False, "", "false", "False"):
        return None
    if requested not in (True, "true", "True", "last"):
        return str(requested)
    return last_complete_checkpoint(Path(training_args.output_dir))


def speed_up_loss_on_cpu(trainer, cfg) -> bool:
    """The recipe's CPU speed-ups of the training loss, SFT's and GRPO's alike: ``cpu_loss_kernels``,
    ``share_prompts``, ``keep_freed_memory``. Returns False, changing nothing, on a GPU or under
    DeepSpeed or FSDP (their engines own the weights)."""
    from affect_rl.freed_memory import keep_freed_memory
    from affect_rl.hardware import cpu_speedups_apply
    from affect_rl.loss_kernels import cpu_loss_kernels_in
    from affect_rl.shared_prompts import share_prompts_in

    if not cpu_speedups_apply(cfg.training):
        return False
    if cfg.recipe.cpu_loss_kernels:  # before share_prompts, which wraps the forward it leaves
        cpu_loss_kernels_in(trainer, eager_attention=cfg.model.attn_implementation is None)
    if cfg.recipe.share_prompts:
        share_prompts_in(trainer)
    if cfg.recipe.keep_freed_memory:
        keep_freed_memory()
    return True


def run_training(trainer, cfg):
    """``trainer.train()`` from the last complete checkpoint, with the health callbacks; raises
    TrainingDiverged on a NaN/inf loss or reward and KeyboardInterrupt after a signal stop."""
    health, signals = StopOnNonFinite(), CheckpointOnSignal(stop_file_from_env())
    trainer.add_callback(health)
    trainer.add_callback(signals)
    if cfg.recipe.max_train_seconds is not None:
        trainer.add_callback(StopAfterSeconds(cfg.recipe.max_train_seconds))
    checkpoint = resume_checkpoint(cfg.training)
    if checkpoint:
        logger.info("Resuming from %s", checkpoint)
        if trainer.is_world_process_zero():
            record_resume(cfg.training.output_dir, checkpoint)
    try:
        result = trainer.train(resume_from_checkpoint=checkpoint)
    finally:
        signals.restore()
    output_dir = Path(cfg.training.output_dir)
    if health.problem:
        step, key, value = health.problem
        inspect = output_dir / f"nonfinite-step-{step}"  # not a checkpoint-N: never resumed from
        trainer.save_model(str(inspect))
        if trainer.is_world_process_zero():
            trainer.state.save_to_json(str(inspect / "trainer_state.json"))
            set_aside_diverged_checkpoints(output_dir, health.last_finite_step)
        end_stage(cfg)
        raise TrainingDiverged(
            f"{cfg.stage}: {key} became {value} at step {step}; training stopped and that step's model was saved to "
            f"{inspect} for inspection. Lower learning_rate (or set max_grad_norm), check the data and rewards, "
            "then train again from the last complete checkpoint (a changed config needs a new output_dir or "
            "`affect-rl pipeline --restart`).")
    if signals.stopped_by:
        end_stage(cfg)
        raise KeyboardInterrupt(f"{signals.stopped_by}: saved checkpoint-{trainer.state.global_step} in {output_dir}")
    return result


def save_final_model(trainer, output_dir: str | Path) -> None:
    """``trainer.save_model`` into ``output_dir/.final-model.partial``, then rename its files into
    ``output_dir`` (``config.json`` last), so the folder never holds a half-written model."""
    output_dir = Path(output_dir)
    staging = output_dir / FINAL_STAGING
    if trainer.is_world_process_zero() and staging.exists():
        shutil.rmtree(staging)  # left by a save that was interrupted: never a finished model
    trainer.save_model(str(staging))  # every rank: ZeRO-3 gathers the shards for rank 0
    if trainer.is_world_process_zero():
        publish_folder(staging, output_dir)
        state = json.dumps(dataclasses.asdict(trainer.state), indent=2, sort_keys=True) + "\n"  # as save_to_json
        atomic_write_text(output_dir / "trainer_state.json", state)


def finish_stage(trainer, cfg, test_rows) -> None:
    """Save the final model, tokenizer and log history; print samples and tracking hints."""
    from affect_rl.data import render_prompt
    from affect_rl.data.media import row_images
    from affect_rl.samples import format_samples, generate_samples

    save_final_model(trainer, cfg.training.output_dir)
    count = min(cfg.recipe.num_sample_prompts, len(test_rows))
    # Every rank generates: under ZeRO-3 each holds a shard, and generation gathers them.
    prompts = [render_prompt(test_rows[i], cfg.data.task, cfg.data.template, cfg.data.system_prompt,
                             cfg.data.label_set) for i in range(count)]
    images = [row_images(test_rows[i]) for i in range(count)]
    completions = generate_samples(trainer.model, trainer.processing_class, prompts, images) if count else []
    end_stage(cfg)
    if not trainer.is_world_process_zero():
        return
    if completions:
        print(format_samples(prompts, completions, f"{cfg.stage.upper()} samples on held-out prompts"))
    print(f"Saved the {cfg.stage} model to {cfg.training.output_dir}")
    for line in tracking_summary(cfg.training):
        print(line)
