"""Training health: stop on a NaN or infinite loss or reward; save and stop on a signal.

:class:`StopOnNonFinite` watches what the trainer logs (``loss``, ``eval_loss``, GRPO's
``reward``, the weighted sum it optimises, and ``grad_norm`` except under fp16, whose loss
scaler skips steps with infinite gradients by design) and stops training at the first NaN or
inf. Checkpoints that may hold the diverged weights are then renamed
(``affect_rl.checkpoints.set_aside_diverged_checkpoints``), so a re-run resumes from a good
one. affect-rl sets ``logging_nan_inf_filter: false`` by default, because transformers' default
replaces a non-finite loss by the mean of the previous ones in the log, which would hide it.
The check runs at each logging step (``logging_steps``), so it names that step.

:class:`CheckpointOnSignal` handles SIGUSR1 (Slurm's warning before the time limit, sent with
``#SBATCH --signal=B:USR1@300`` and forwarded by ``launch/slurm/train.slurm``), SIGTERM, and a
stop file (``$AFFECT_RL_STOP_FILE``, which the Slurm script creates on a shared filesystem so
every node sees it). At the end of the current step the trainer saves a complete
``checkpoint-N`` and stops; the run then resumes from it (PyTorch Lightning's SLURM
auto-requeue works the same way). Under several processes the ranks agree with one all-reduce
per step, so all of them save and stop at the same step.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
from pathlib import Path

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

WATCHED_LOGS = ("loss", "eval_loss", "reward")
STOP_FILE_ENV = "AFFECT_RL_STOP_FILE"
STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


class StopOnNonFinite(TrainerCallback):
    """Stop training at the first logged NaN or infinite value of :data:`WATCHED_LOGS`.

    After training, ``problem`` holds ``(step, key, value)`` of the first one, else None, and
    ``last_finite_step`` the last logged step whose values were all finite: checkpoints saved
    after it may hold NaN weights. The checkpoint the trainer would save at the failing step is
    cancelled.
    """

    def __init__(self):
        self.problem: tuple[int, str, float] | None = None
        self.last_finite_step = 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.problem is not None:
            return control
        for key in WATCHED_LOGS + (() if args.fp16 else ("grad_norm",)):
            value = (logs or {}).get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                self.problem = (state.global_step, key, value)
                logger.error("%s is %s at step %d: stopping training", key, value, state.global_step)
                control.should_training_stop = True
                control.should_save = False  # its weights are the diverged ones
                return control
        self.last_finite_step = state.global_step
        return control


class CheckpointOnSignal(TrainerCallback):
    """On SIGUSR1/SIGTERM or when the stop file exists: save ``checkpoint-N`` and stop after this step.

    ``stopped_by`` names the cause afterwards (None when training ran to its end). The previous
    signal handlers are restored at the end of training.
    """

    def __init__(self, stop_file: str | None = None):
        self.stop_file = Path(stop_file) if stop_file else None
        self.received: str | None = None
        self.stopped_by: str | None = None
        self.previous_handlers: dict[int, object] = {}

    def handle(self, signum, frame):
        self.received = signal.Signals(signum).name
        logger.warning("%s received: saving a checkpoint at the end of this step, then stopping", self.received)

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():  # Python sets handlers there only
            for signum in STOP_SIGNALS:
                self.previous_handlers[signum] = signal.signal(signum, self.handle)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self.restore()
        return control

    def restore(self) -> None:
        """Put the signal handlers back as they were before training."""
        for signum, handler in self.previous_handlers.items():
            signal.signal(signum, handler)
        self.previous_handlers.clear()

    def local_request(self) -> str | None:
        if self.received:
            return self.received
        if self.stop_file is not None and self.stop_file.exists():
            return f"stop file {self.stop_file}"
        return None

    def on_step_end(self, args, state, control, **kwargs):
        request = self.local_request()
        if any_rank(request is not None, args) and self.stopped_by is None:
            self.stopped_by = request or "another rank's stop request"
            control.should_save = True
            control.should_training_stop = True
        return control


def any_rank(flag: bool, args) -> bool:
    """``flag`` or'ed over all processes (one all-reduce on ``args.device``; ``flag`` itself when
    there is one process)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    tensor = torch.tensor([int(flag)], device=args.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def stop_file_from_env() -> str | None:
    """The stop file that the Slurm script creates to ask for a checkpoint (None outside it)."""
    return os.environ.get(STOP_FILE_ENV) or None
