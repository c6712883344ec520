"""GRPO stage: optimise the recipe's rewards with TRL's GRPOTrainer, usually from an SFT checkpoint.

Rollouts use HF generate by default; ``use_vllm: true`` with ``vllm_mode: colocate | server``
passes straight to TRL (a CUDA GPU and the ``vllm`` extra are checked before any model loads).

    affect-rl grpo --config recipes/demo/grpo.yaml [--key value ...]
    accelerate launch --config_file launch/accelerate/zero2.yaml -m affect_rl.cli grpo --config FILE
"""

from __future__ import annotations

import importlib.util
import warnings

import rewards
from affect_rl.config import StageConfig
from affect_rl.cpu_speedups import score_labelled_positions_only
from affect_rl.data import to_grpo_dataset
from affect_rl.diagnostics import with_diagnostics
from affect_rl.errors import EnvironmentProblem
from affect_rl.hardware import cpu_speedups_apply, cuda_available
from affect_rl.models import load_causal_lm, load_tokenizer
from affect_rl.rollouts import cpu_rollouts
from affect_rl.scoring import build_reward_functions
from affect_rl.shared_prompts import share_prompt_forward
from affect_rl.stage import finish_stage, load_stage_data, resume_checkpoint
from affect_rl.tracking import prepare_tracking
from rewards.templates import get_template


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


def reward_functions_with_diagnostics(cfg: StageConfig) -> list:
    """The recipe's reward functions (weights are already in GRPOConfig.reward_weights), one
    wrapped to log the reward-hacking diagnostics."""
    from trl.trainer.utils import is_async_callable

    reward_fns, _ = build_reward_functions(cfg.recipe.rewards, cfg.source)
    template = cfg.data.template
    format_fn = rewards.build("format", template=template)
    # Wrap a synchronous reward: TRL runs async ones (judges) concurrently on its own loop.
    index = next((i for i, fn in enumerate(reward_fns) if not is_async_callable(fn)), None)
    if index is not None:
        reward_fns[index] = with_diagnostics(reward_fns[index], format_fn, get_template(template))
    return reward_fns


def build_trainer(cfg: StageConfig):
    """The GRPOTrainer for ``cfg`` and the data splits, ready to train (vLLM and rewards are
    checked before the model loads)."""
    from trl import GRPOTrainer
    from trl.trainer.utils import get_peft_config

    check_vllm_available(cfg.training)
    reward_fns = reward_functions_with_diagnostics(cfg)
    splits = load_stage_data(cfg)
    train_dataset = to_grpo_dataset(splits["train"], cfg.data)

    prepare_tracking(cfg.training)
    model, continues_adapter = load_causal_lm(cfg.model, merge_adapter=cfg.recipe.merge_adapter)
    score_labelled_positions_only()
    tokenizer = load_tokenizer(cfg.model.model_name_or_path, padding_side="left")
    # TRL flags rollout_func as experimental; tests/test_rollouts.py checks affect-rl's use of it.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You are using 'rollout_func'", category=UserWarning)
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=reward_fns,
            args=cfg.training,
            train_dataset=train_dataset,
            processing_class=tokenizer,
            peft_config=None if continues_adapter else get_peft_config(cfg.model),
            rollout_func=cpu_rollouts(cfg.training, tokenizer) if cfg.recipe.fast_rollouts else None,
        )
    if cfg.recipe.share_prompts and cpu_speedups_apply(cfg.training):
        # The model TRL gave its fused LM head (under a LoRA adapter: the base model).
        share_prompt_forward(trainer.model.get_base_model() if hasattr(trainer.model, "peft_config") else trainer.model)
    return trainer, splits


def train(cfg: StageConfig):
    """Run the GRPO stage described by ``cfg``; returns the trainer after saving the model."""
    trainer, splits = build_trainer(cfg)
    trainer.train(resume_from_checkpoint=resume_checkpoint(cfg.training))
    finish_stage(trainer, cfg, splits["test"])
    return trainer
