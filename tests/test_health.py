"""Training health: the NaN/inf stop and the save-on-signal stop, alone and inside a real SFT run."""

import json
import math
import os
import signal

import pytest
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from affect_rl.checkpoints import checkpoint_problem, weights_finite
from affect_rl.config import build_stage_config
from affect_rl.errors import TrainingDiverged
from affect_rl.health import CheckpointOnSignal, StopOnNonFinite
from affect_rl.stage import begin_stage, end_stage, run_training


@pytest.fixture()
def args(tmp_path):
    return TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")


def at_step(step: int) -> TrainerState:
    state = TrainerState()
    state.global_step = step
    return state


@pytest.mark.parametrize("logs", [{"loss": math.nan}, {"loss": math.inf}, {"reward": -math.inf},
                                  {"eval_loss": math.nan}, {"loss": 0.5, "grad_norm": math.nan}])
def test_a_non_finite_loss_reward_or_gradient_stops_training_and_names_the_step(args, logs):
    health, control = StopOnNonFinite(), TrainerControl()
    health.on_log(args, at_step(3), control, logs={"loss": 1.2, "reward": 0.4, "grad_norm": 2.0})
    assert not control.should_training_stop and health.last_finite_step == 3
    control.should_save = True  # the checkpoint the default flow planned for this step
    health.on_log(args, at_step(4), control, logs=logs)
    key, value = next((k, v) for k, v in logs.items() if not math.isfinite(v))
    assert health.problem[:2] == (4, key) and str(health.problem[2]) == str(value)
    assert control.should_training_stop and not control.should_save
    assert health.last_finite_step == 3


def test_per_reward_means_and_fp16_gradient_overflow_do_not_stop_training(tmp_path):
    # A reward that applies to no row of a batch logs NaN as its mean; fp16's scaler skips inf steps.
    fp16_args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    fp16_args.fp16 = True  # set after construction: fp16 needs a GPU to validate
    health, control = StopOnNonFinite(), TrainerControl()
    health.on_log(fp16_args, at_step(2), control, logs={"loss": 0.3, "rewards/rubric/mean": math.nan,
                                                        "grad_norm": math.inf})
    assert health.problem is None and not control.should_training_stop


@pytest.mark.parametrize("how", ["SIGUSR1", "SIGTERM", "stop file"])
def test_a_signal_or_the_stop_file_asks_for_a_checkpoint_and_a_stop(args, tmp_path, how):
    stop_file = tmp_path / "stop"
    saver, control = CheckpointOnSignal(str(stop_file)), TrainerControl()
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGUSR1, signal.SIGTERM)}
    saver.on_train_begin(args, at_step(0), control)
    saver.on_step_end(args, at_step(1), control)
    assert not control.should_save and saver.stopped_by is None
    if how == "stop file":
        stop_file.touch()
    else:
        os.kill(os.getpid(), getattr(signal, how))
    saver.on_step_end(args, at_step(2), control)
    assert control.should_save and control.should_training_stop
    assert saver.stopped_by == (how if how != "stop file" else f"stop file {stop_file}")
    saver.on_train_end(args, at_step(2), control)
    assert {signum: signal.getsignal(signum) for signum in before} == before


# ---- inside a real SFT run on the tiny model ----


class SignalAtStep(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR1)


class PoisonUpdateAtStep(TrainerCallback):
    """Makes one optimizer update NaN (as an overflowing gradient would): the loss is finite at
    that step and NaN from the next one on."""

    def __init__(self, step):
        self.step = step

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if state.global_step + 1 == self.step:
            next(p for p in model.parameters() if p.grad is not None).grad.fill_(math.nan)


def tiny_sft(output_dir, model_dir, data_file, callbacks=(), **overrides):
    """The SFT stage's trainer on the tiny model, built as ``affect_rl.sft.train`` builds it."""
    from trl import SFTTrainer

    from affect_rl.data import load_splits, to_sft_dataset
    from affect_rl.models import load_causal_lm, load_tokenizer

    values = dict(model_name_or_path=model_dir, dataset=data_file, task="emotion", template="r1",
                  output_dir=str(output_dir), max_steps=4, per_device_train_batch_size=2, learning_rate=1e-3,
                  logging_steps=1, save_strategy="no", report_to="none", bf16=False, num_sample_prompts=0,
                  resume_from_checkpoint="last", seed=0)
    cfg = build_stage_config("sft", {**values, **overrides}, "test.yaml")
    begin_stage(cfg)
    splits = load_splits(cfg.data)
    model, _ = load_causal_lm(cfg.model)
    trainer = SFTTrainer(model=model, args=cfg.training, processing_class=load_tokenizer(model_dir, "right"),
                         train_dataset=to_sft_dataset(splits["train"], "emotion", "r1", None), callbacks=list(callbacks))
    return cfg, trainer


@pytest.mark.slow
def test_sigusr1_saves_a_complete_checkpoint_stops_and_the_rerun_resumes_from_it(tmp_path, tiny_model_dir,
                                                                                   emotion_file):
    output_dir = tmp_path / "sft"
    cfg, trainer = tiny_sft(output_dir, tiny_model_dir, emotion_file, [SignalAtStep(2)])
    with pytest.raises(KeyboardInterrupt, match=f"SIGUSR1: saved checkpoint-2 in {output_dir}"):
        run_training(trainer, cfg)
    assert trainer.state.global_step == 2
    assert checkpoint_problem(output_dir / "checkpoint-2") is None
    assert not (output_dir / "model.safetensors").exists()  # no final model for an unfinished stage
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL

    cfg, trainer = tiny_sft(output_dir, tiny_model_dir, emotion_file)
    run_training(trainer, cfg)
    end_stage(cfg)
    assert trainer.state.global_step == 4
    identity = json.loads((output_dir / "affect_rl_config.json").read_text())
    assert identity["resumed_from"] == [str(output_dir / "checkpoint-2")]
    assert [entry["step"] for entry in trainer.state.log_history if "loss" in entry] == [1, 2, 3, 4]


@pytest.mark.slow
def test_a_nan_update_stops_training_keeps_good_checkpoints_and_sets_the_poisoned_ones_aside(
        tmp_path, tiny_model_dir, emotion_file):
    output_dir = tmp_path / "sft"
    cfg, trainer = tiny_sft(output_dir, tiny_model_dir, emotion_file, [PoisonUpdateAtStep(3)], max_steps=8,
                            save_strategy="steps", save_steps=1)
    with pytest.raises(TrainingDiverged, match=r"sft: loss became nan at step 4; .* saved to .*nonfinite-step-4"):
        run_training(trainer, cfg)
    assert trainer.state.global_step == 4
    # checkpoint-3 was saved after the NaN update (its loss was still finite): set aside, not deleted.
    assert sorted(path.name for path in output_dir.glob("*checkpoint-*")) == [
        "checkpoint-1", "checkpoint-2", "nonfinite-checkpoint-3"]
    assert weights_finite(output_dir / "checkpoint-2") is True
    assert weights_finite(output_dir / "nonfinite-checkpoint-3") is False
    assert (output_dir / "nonfinite-step-4" / "trainer_state.json").is_file()
    assert not (output_dir / "model.safetensors").exists()
