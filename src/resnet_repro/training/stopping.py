"""Stopping a long run cleanly: at a wall-clock deadline, on SIGTERM, on SLURM's warning before
a time limit (SIGUSR2, as submitit asks for it) or on Ctrl-C, with a checkpoint at the iteration
reached, so that the next call (or the requeued job) continues it exactly."""

from __future__ import annotations

import re
import signal
import threading
import time
from pathlib import Path

import pytorch_lightning as pl

UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration such as ``"150m"``, ``"2.5h"`` or ``"90s"``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh])\s*", str(text))
    if match is None:
        raise ValueError(f"time_budget={text!r}: give a duration with its unit, e.g. 150m, "
                         "2.5h or 90s (make: BUDGET=150m)")
    return float(match.group(1)) * UNITS[match.group(2)]


def write_step_metrics(trainer: pl.Trainer) -> None:
    """Hand this iteration's logged metrics to the loggers now, as Lightning's loop does after
    ``on_train_batch_end``, which a stop raising there never reaches: a logging window that
    ends on the stop's iteration (its error taken in ``training_step``) would be lost. The
    loop's own two calls, in its order (Lightning 2.x's logger connector)."""
    trainer._logger_connector.on_batch_end()
    trainer._logger_connector.update_train_step_metrics()


class StopRequested(Exception):
    """Raised out of the fit once the stop's checkpoint is saved; its message is the reason."""


class StopCleanly(pl.Callback):
    """Ends the fit after the current iteration once ``deadline`` (a ``time.time()`` value)
    has passed, or after SIGTERM, SIGUSR2 or Ctrl-C, saving a checkpoint of that iteration to
    ``checkpoint`` first (saved where Lightning saves its periodic ones, so it resumes the
    same way), then raising ``StopRequested``: Lightning's own ``should_stop`` would first run
    an evaluation that the uninterrupted run does not have. A second Ctrl-C stops at once.
    ``reason`` says why it stopped, or is None. Under DDP the processes agree on the iteration:
    one process's stop (a signal sent to it alone, a deadline it reached first) stops them all.

    ``hand_on()``, once the stop is recorded, gives the signal to the handler that was there
    before, where that is a launcher's own: submitit's handler of SIGUSR2 (which SLURM sends
    ``signal_delay_s`` before a time limit) then requeues the job, which resumes from the
    checkpoint."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)

    def __init__(self, checkpoint: Path, deadline: float | None = None):
        self.checkpoint, self.deadline = Path(checkpoint), deadline
        self.reason: str | None = None
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._request_stop)
                              for number in self.SIGNALS}

    def _request_stop(self, number: int, frame) -> None:
        if self.reason is not None and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason, self.signal = signal.Signals(number).name, number

    def on_train_batch_end(self, trainer, *_) -> None:
        if self.reason is None and self.deadline is not None and time.time() >= self.deadline:
            self.reason = "budget"
        if self._all_stop(trainer) and trainer.global_step < trainer.max_steps:
            trainer.save_checkpoint(self.checkpoint)
            write_step_metrics(trainer)
            raise StopRequested(self.reason)

    def _all_stop(self, trainer) -> bool:
        """Whether any process stops here (a no-op with one process)."""
        stop = trainer.strategy.reduce_boolean_decision(self.reason is not None, all=False)
        if stop and self.reason is None:
            self.reason = "another process stopped"
        return stop

    def hand_on(self) -> None:
        """SIGTERM is held meanwhile: submitit's requeue (``scontrol requeue``, run as a child)
        makes SLURM end the job's step at once with SIGTERM to all its processes, that child
        included; killed before it exits, it fails the handler, and submitit reports the job,
        requeued all the same, as failed. A held signal is inherited by the child; here it
        arrives once the handler is through (submitit's own handler of SIGTERM ignores it)."""
        previous = signal.getsignal(self.signal) if self.signal is not None else None
        if callable(previous) and previous is not signal.default_int_handler:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            try:
                previous(self.signal, None)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    def on_train_end(self, *_) -> None:
        self._restore_signals()

    def on_exception(self, *_) -> None:
        self._restore_signals()

    def _restore_signals(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}
