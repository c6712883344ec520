"""GRPO with ``num_iterations`` > 1: the old policy's log-probabilities from the first pass's own forward.

When each rollout serves μ > 1 policy updates, TRL (1.16) runs one more forward, without
gradients, over every completion right after generating it, to get the old policy's
log-probabilities (the denominator of the importance ratio). With ``steps_per_generation`` equal
to ``gradient_accumulation_steps`` (TRL's default), the first pass over a rollout runs before any
optimizer step since the rollout was generated: the policy is still the old policy, and the
first pass's own forward (which the loss needs anyway) yields those log-probabilities.

``reuse_first_pass_logprobs(trainer)`` does that:

- during generation it tells TRL's old-log-probability rule that the rollout serves one update
  (``num_iterations`` is 1 for that call only), so TRL skips the extra forward and the first
  pass uses its own detached log-probabilities as the old ones, as TRL does when μ = 1;
- the first pass's loss stores those detached log-probabilities in the rollout's buffered
  inputs, where the later passes find them as ``old_per_token_logps``.

The loss and gradients are the same as TRL's, up to floating-point differences between two
forwards over the same rows in different batches: ``tests/test_first_pass_logprobs.py`` checks
them (fp32) and that one forward per rollout is saved. It applies where the two coincide:
μ > 1, ``steps_per_generation == gradient_accumulation_steps``, and no vLLM (whose importance
sampling correction needs TRL's own forward). Elsewhere TRL runs unchanged.
"""

from __future__ import annotations

import functools


def applies(args) -> bool:
    """Whether the first pass over each rollout runs on the policy that generated it."""
    return (args.num_iterations > 1 and args.steps_per_generation == args.gradient_accumulation_steps
            and not args.use_vllm)


def reuse_first_pass_logprobs(trainer) -> bool:
    """Patch ``trainer`` (a ``GRPOTrainer``) to take the old log-probabilities from each rollout's
    first pass; returns whether it applied (see :func:`applies`)."""
    if not applies(trainer.args):
        return False
    generate_and_score = trainer._generate_and_score_completions
    compute_loss = trainer._compute_loss

    @functools.wraps(generate_and_score)
    def generate_without_old_logprobs(*args, **kwargs):
        num_iterations, trainer.num_iterations = trainer.num_iterations, 1
        try:
            return generate_and_score(*args, **kwargs)
        finally:
            trainer.num_iterations = num_iterations

    @functools.wraps(compute_loss)
    def loss_keeping_first_pass_logprobs(model, inputs):
        if inputs.get("old_per_token_logps") is not None:
            return compute_loss(model, inputs)
        kept, own = [], vars(trainer).get("_get_per_token_logps_and_entropies")
        logprobs_and_entropies = trainer._get_per_token_logps_and_entropies

        def keep(*args, **kwargs):
            result = logprobs_and_entropies(*args, **kwargs)
            kept.append(result[0].detach())
            return result

        trainer._get_per_token_logps_and_entropies = keep
        try:
            loss = compute_loss(model, inputs)
        finally:
            if own is None:
                del trainer._get_per_token_logps_and_entropies  # the class's method again
            else:
                trainer._get_per_token_logps_and_entropies = own
        (inputs["old_per_token_logps"],) = kept
        return loss

    trainer._generate_and_score_completions = generate_without_old_logprobs
    trainer._compute_loss = loss_keeping_first_pass_logprobs
    return True
