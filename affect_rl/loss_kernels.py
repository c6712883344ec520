"""The kernels the training loss runs on CPU: eager attention, and the log-probabilities over the vocabulary
from one GEMM and one fused log_softmax per block of tokens.

Attention. ATen's scaled-dot-product attention on CPU (its flash kernel, forward and backward) was slower
than transformers' eager attention (two matmuls and a softmax) at the demo's lengths: one GRPO loss
pass (16 completions of 48 tokens on 4 shared prompts, forward and backward, bf16 autocast) took 2.08 s
with eager attention against 2.88 s with SDPA (best of 3, alternating in one process). Sampling was not
faster with eager attention (4.2-5.9 s against 4.2-4.8 s a rollout), so only the loss's forward switches.

Log-probabilities. TRL (1.16) scores the training tokens through ``trl.kernels.ChunkedLogProbFunction``:
[tokens x 32,768] tiles of the LM head's logits, each folded into online-logsumexp statistics by a
Triton kernel. Without Triton (on a CPU) each tile is folded by about ten elementwise torch ops; the
backward recomputes the tile, turns it into the logits' gradient with about fifteen more, and runs
both gradient GEMMs in fp32 (4x slower than bf16 on this CPU).

``VocabLogProbs`` computes the same outputs from whole vocabulary rows, a block of tokens at a time:

    z = logit_scale * (h W^T) / temperature       (the GEMM in the compute dtype, z in fp32)
    log p = log_softmax(z)                         (ATen's fused kernel)
    outputs: log p(target); entropy H = -sum_v p_v log p_v; log sum_v p_v^2; mean_v z_v; argmax_v z_v == target
    d log p(target) / dz = onehot(target) - p      d H / dz = -p (log p + H)

It keeps log p for the backward while that fits in ``KEEP_BYTES`` (else it recomputes it block by
block), and runs the gradient GEMMs in the compute dtype: bf16 under autocast, as every other layer's
gradients are (TRL accumulates these two in fp32). A bias, a final-logit softcap or another device
than the CPU goes to TRL's function. At the demo's shape (768 tokens, 576 hidden, 49,152 vocabulary,
bf16 autocast), log-probabilities and entropy, forward and backward: TRL 0.61-0.67 s, this 0.24-0.34 s
alone; in the trainer 0.6-1.5 s against 0.35-1.0 s a pass.

In fp32 the loss and every gradient equal TRL's path (SDPA and TRL's chunked function) within 1e-5
(``tests/test_loss_kernels.py``).
"""

from __future__ import annotations

import functools
import types

import torch

from affect_rl.models import fused_head_model

KEEP_BYTES = 2**30  # keep the fp32 log-probabilities for the backward up to 1 GiB, else recompute them
BLOCK_ELEMENTS = 2**26  # tokens per block: 64M logits, 256 MB in fp32
_NO_GRAD_OUTPUTS = ("log_sum_sq_probs", "mean_logits", "is_top1")


def _logits_and_log_probs(hidden: torch.Tensor, weight: torch.Tensor, scale: float):
    """fp32 z = scale * hidden @ weight^T and log_softmax(z) (hidden and weight in the compute dtype)."""
    logits = torch.mm(hidden, weight.t()).float()
    if scale != 1.0:
        logits.mul_(scale)
    return logits, logits.log_softmax(-1)


def _logit_grads(log_p, targets, entropy, grad_log_p, grad_entropy):
    """dL/dz of one block, from the per-token gradients of log p(target) and of the entropy (either may be None)."""
    p = log_p.exp()
    grad = None
    if grad_entropy is not None:  # dH/dz = -p (log p + H)
        grad = (log_p + entropy[:, None]).mul_(p).mul_(-grad_entropy[:, None])
    if grad_log_p is not None:  # d log p(t)/dz = onehot(t) - p
        term = p.mul_(-grad_log_p[:, None])
        term[torch.arange(len(targets)), targets] += grad_log_p
        grad = term if grad is None else grad.add_(term)
    return grad


@torch.autocast("cpu", enabled=False)  # every dtype here is explicit
def _score(hidden, weight, targets, scale: float, outputs: tuple[str, ...], compute: torch.dtype):
    """The forward's outputs by name, the log-probabilities of each block to keep (or None) and the block size."""
    head = weight.to(compute)
    rows = max(1, BLOCK_ELEMENTS // weight.shape[0])
    keep = hidden.shape[0] * weight.shape[0] * 4 <= KEEP_BYTES
    found = {name: [] for name in ("log_probs", *outputs)}
    kept = []
    for start in range(0, hidden.shape[0], rows):
        logits, log_p = _logits_and_log_probs(hidden[start:start + rows].to(compute), head, scale)
        block_targets = targets[start:start + rows]
        found["log_probs"].append(log_p.gather(1, block_targets[:, None]).squeeze(1))
        if "entropy" in outputs:
            found["entropy"].append(-torch.linalg.vecdot(log_p.exp(), log_p))
        if "log_sum_sq_probs" in outputs:
            found["log_sum_sq_probs"].append((2 * log_p).logsumexp(-1))
        if "mean_logits" in outputs:
            found["mean_logits"].append(logits.mean(-1))
        if "is_top1" in outputs:  # argmax returns the first maximum, as TRL counts ties
            found["is_top1"].append(logits.argmax(-1) == block_targets)
        if keep:
            kept.append(log_p)
    return {name: torch.cat(blocks) for name, blocks in found.items()}, kept if keep else None, rows


class VocabLogProbs(torch.autograd.Function):
    """log p(target) and the ``outputs`` TRL's chunked function returns, for [N, H] hidden states and a [V, H] head."""

    @staticmethod
    def forward(ctx, hidden, weight, targets, scale: float, outputs: tuple[str, ...]):
        ctx.set_materialize_grads(False)
        compute = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else hidden.dtype
        results, ctx.kept, ctx.rows = _score(hidden, weight, targets, scale, outputs, compute)
        entropy = results.get("entropy")
        ctx.save_for_backward(hidden, weight, targets, *(() if entropy is None else (entropy,)))
        ctx.compute, ctx.scale = compute, scale
        ctx.mark_non_differentiable(*(results[name] for name in _NO_GRAD_OUTPUTS if name in results))
        return tuple(results.get(name) for name in ("log_probs", "entropy", *_NO_GRAD_OUTPUTS))

    @staticmethod
    @torch.autocast("cpu", enabled=False)
    def backward(ctx, grad_log_p, grad_entropy, *_):
        hidden, weight, targets, *entropy = ctx.saved_tensors
        entropy = entropy[0] if entropy else None
        if grad_log_p is None and grad_entropy is None:
            return None, None, None, None, None
        head = weight.to(ctx.compute)
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = None
        for index, start in enumerate(range(0, hidden.shape[0], ctx.rows)):
            end = start + ctx.rows
            block = hidden[start:end].to(ctx.compute)
            log_p = ctx.kept[index] if ctx.kept else _logits_and_log_probs(block, head, ctx.scale)[1]
            # z is scale * (h W^T): the scale enters through the per-token coefficients.
            grad = _logit_grads(log_p, targets[start:end], None if entropy is None else entropy[start:end],
                                None if grad_log_p is None else grad_log_p[start:end].float() * ctx.scale,
                                None if grad_entropy is None else grad_entropy[start:end].float() * ctx.scale)
            grad = grad.to(ctx.compute)
            if grad_hidden is not None:
                grad_hidden[start:end] = grad @ head
            if ctx.needs_input_grad[1]:
                block_grad = (grad.t() @ block).float()
                grad_weight = block_grad if grad_weight is None else grad_weight.add_(block_grad)
        ctx.kept = None
        return grad_hidden, None if grad_weight is None else grad_weight.to(weight.dtype), None, None, None


class _VocabLogProbsOnCpu:
    """TRL's ``_ChunkedLogProbFunction.apply`` signature: ``VocabLogProbs`` where it applies, else TRL's own."""

    def __init__(self, shipped):
        self.shipped = shipped

    def apply(self, hidden, weight, bias, targets, temperature, chunk_size, final_logit_softcapping, logit_scale,
              outputs):
        if hidden.device.type != "cpu" or bias is not None or final_logit_softcapping is not None:
            return self.shipped.apply(hidden, weight, bias, targets, temperature, chunk_size,
                                      final_logit_softcapping, logit_scale, outputs)
        return VocabLogProbs.apply(hidden, weight, targets, logit_scale / temperature, tuple(outputs))


def cpu_loss_kernels_in(trainer, eager_attention: bool = True) -> None:
    """Run the trainer's fused-LM-head forward (TRL's ``add_fused_lm_head``; under LoRA its base model's)
    with ``VocabLogProbs`` and, where ``eager_attention``, transformers' eager attention."""
    model = fused_head_model(trainer)
    fused_forward = model.forward

    @functools.wraps(type(model).forward)  # generate reads the forward's parameters
    def forward(self, *args, fused_lm_head=False, **kwargs):
        if not fused_lm_head:
            return fused_forward(*args, **kwargs)
        import trl.trainer.utils as trl_utils

        shipped, attention = trl_utils._ChunkedLogProbFunction, self.config._attn_implementation
        trl_utils._ChunkedLogProbFunction = _VocabLogProbsOnCpu(shipped)
        if eager_attention:
            self.config._attn_implementation = "eager"  # read by every attention layer at each call
        try:
            return fused_forward(*args, fused_lm_head=True, **kwargs)
        finally:
            trl_utils._ChunkedLogProbFunction = shipped
            self.config._attn_implementation = attention

    model.forward = types.MethodType(forward, model)
