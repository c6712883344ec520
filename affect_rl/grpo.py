"""GRPO stage: optimise the recipe's rewards with TRL's GRPOTrainer, usually from an SFT checkpoint.

Rollouts use HF generate by default; ``use_vllm: true`` with ``vllm_mode: colocate | server``
passes straight to TRL (a CUDA GPU and the ``vllm`` extra are checked before any model loads).

    affect-rl grpo --config recipes/demo/grpo.yaml [--key value ...]
    accelerate launch --config_file launch/accelerate/zero2.yaml -m affect_rl.cli grpo --config FILE
"""

from __future__ import annotations

import importlib.util
import warnings

from affect_rl.config import StageConfig, task_gold_columns, validate_rewards
from affect_rl.cpu_speedups import score_labelled_positions_only
from affect_rl.data import to_grpo_dataset
from affect_rl.diagnostics import WithDiagnostics
from affect_rl.errors import EnvironmentProblem
from affect_rl.first_pass_logprobs import reuse_first_pass_logprobs
from affect_rl.hardware import cuda_available
from affect_rl.models import load_causal_lm, load_processing_class, training_setup
from affect_rl.rollouts import cpu_rollouts
from affect_rl.scoring import build_reward_functions
from affect_rl.stage import begin_stage, finish_stage, load_stage_data, run_training, speed_up_loss_on_cpu
from affect_rl.tracking import prepare_tracking


def check_vllm_available(training_args) -> None:
    """Fail early, with the way out, when the recipe asks for vLLM on a machine that cannot run it."""
    if not training_args.use_vllm:
        return
    problems = []
    if importlib.util.find_spec("vllm") is None:
        problems.append("the vllm package is not installed (pip install 'affect-rl[vllm]')")
    if not cuda_available():
        problems.append("no CUDA GPU is visible (vLLM needs one)")
    if problems:
        raise EnvironmentProblem(
            f"use_vllm: true (vllm_mode: {training_args.vllm_mode}) cannot run here: {'; '.join(problems)}. "
            "To run without vLLM, set `use_vllm: false` in the recipe or pass --use_vllm false: "
            "rollouts then use HF generate (slower, works on CPU)."
        )


def reward_functions_with_diagnostics(cfg: StageConfig, extra: list | None = None) -> list:
    """The recipe's reward functions (weights are already in GRPOConfig.reward_weights), the first
    synchronous one wrapped to log the reward-hacking diagnostics and the rows' gold values."""
    from trl.trainer.utils import is_async_callable

    entries = validate_rewards(cfg) if cfg.recipe.rewards or not extra else []
    reward_fns = build_reward_functions(entries)[0] + list(extra or [])
    # Wrap a synchronous reward: TRL runs async ones (judges) concurrently on its own loop.
    index = next((i for i, fn in enumerate(reward_fns) if not is_async_callable(fn)), None)
    if index is not None:
        reward_fns[index] = WithDiagnostics(reward_fns[index], cfg.data.template, task_gold_columns(cfg.data.task))
    return reward_fns


def build_trainer(cfg: StageConfig, train_dataset=None, heldout_dataset=None, reward_funcs=None):
    """The GRPOTrainer for ``cfg`` and the data splits, ready to train (vLLM and rewards are
    checked before the model loads)."""
    from trl import GRPOTrainer

    check_vllm_available(cfg.training)
    reward_fns = reward_functions_with_diagnostics(cfg, reward_funcs)
    splits = load_stage_data(cfg, train_dataset, heldout_dataset)
    train_dataset = to_grpo_dataset(splits["train"], cfg.data)

    prepare_tracking(cfg)
    trust = cfg.training.trust_remote_code
    model, continues_adapter = load_causal_lm(cfg.model, merge_adapter=cfg.recipe.merge_adapter,
                                              trust_remote_code=trust)
    score_labelled_positions_only()
    processing_class = load_processing_class(cfg.model.model_name_or_path, padding_side="left",
                                             trust_remote_code=trust)  # a VLM's processor: TRL adds its images
    # TRL flags rollout_func as experimental; tests/test_rollouts.py checks affect-rl's use of it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You are using 'rollout_func'", category=UserWarning)
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward_fns,
            args=cfg.training,
            train_dataset=train_dataset,
            processing_class=processing_class,
            peft_config=None if continues_adapter else training_setup(model, cfg.model, cfg.recipe),
            rollout_func=cpu_rollouts(cfg.training, processing_class) if cfg.recipe.fast_rollouts else None,
        )
    if speed_up_loss_on_cpu(trainer, cfg) and cfg.recipe.fast_rollouts:
        reuse_first_pass_logprobs(trainer)
    return trainer, splits


def run(config=None, *, train_dataset=None, heldout_dataset=None, reward_funcs=None, **keys):
    """Run GRPO from a recipe dict, a YAML path or a StageConfig (``keys`` override recipe keys),
    on the recipe's data or on ``train_dataset`` / ``heldout_dataset``, with the recipe's rewards
    plus ``reward_funcs`` (TRL reward callables; weights from ``reward_weights``, else 1 each)."""
    from affect_rl.api import stage_config

    cfg = stage_config("grpo", config, extra_rewards=len(reward_funcs or []), rows_given=train_dataset is not None,
                       **keys)
    return train(cfg, train_dataset=train_dataset, heldout_dataset=heldout_dataset, reward_funcs=reward_funcs)


def train(cfg: StageConfig, train_dataset=None, heldout_dataset=None, reward_funcs=None):
    """Run the GRPO stage described by ``cfg``; returns the trainer after saving the model."""
    check_vllm_available(cfg.training)  # before the output folder is claimed
    begin_stage(cfg)
    trainer, splits = build_trainer(cfg, train_dataset, heldout_dataset, reward_funcs)
    run_training(trainer, cfg)
    finish_stage(trainer, cfg, splits["test"])
    return trainer
