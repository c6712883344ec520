"""Make TRL's fused LM head score only the labelled positions on CPU (about 1.5x faster training).

TRL (1.16) computes the training log-probabilities through a fused, chunked LM head
(``trl.trainer.utils.add_fused_lm_head``). On devices with Triton it projects only the
positions that carry a label (``compact``); elsewhere it projects every position, prompt
included, so that Neuron compiles one tile shape. On a CPU nothing is compiled, yet the
prompt positions still go through the whole vocabulary: in the demo they are about 70% of
the positions, and the head's forward and backward took most of each step.

``score_labelled_positions_only()`` makes that one decision (TRL's module-level
``_use_triton`` as read by ``add_fused_lm_head``) true on CPU. The kernel itself still
chooses its torch-ops path on CPU (it reads its own ``_use_triton``), and labelled positions
get exactly the same log-probabilities and gradients (``tests/test_cpu_speedups.py``).
Measured on SmolLM2-135M, 2-core CPU, bf16 autocast: SFT 6.4 -> 4.4 s per step of 8 rows,
GRPO 24.5 -> 16.6 s per step of 16 completions.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def score_labelled_positions_only() -> bool:
    """Apply the CPU patch once per process; returns whether it is in place.

    Without the private hook (another TRL version) nothing changes and TRL runs as shipped.
    """
    import trl.trainer.utils as trl_utils

    decide = getattr(trl_utils, "_use_triton", None)
    if decide is None:
        logger.info("TRL has no fused-LM-head `_use_triton` hook: CPU runs score every position, as TRL ships.")
        return False
    if hasattr(decide, "as_shipped"):
        return True

    def compact_on_cpu_or_triton(device) -> bool:
        return device.type == "cpu" or decide(device)

    compact_on_cpu_or_triton.as_shipped = decide  # TRL's own decision, for benchmarks and tests
    trl_utils._use_triton = compact_on_cpu_or_triton
    return True
