"""A progress bar over the whole run, in iterations, with its ETA (Lightning's resets per epoch)."""

from __future__ import annotations

import sys

from pytorch_lightning.callbacks import TQDMProgressBar


class IterationProgressBar(TQDMProgressBar):
    """One bar from the first to the last iteration (``max_steps``), resumed runs included: a
    run resumed mid-epoch gets no epoch start, so the bar is spanned at the train start too.

    In a terminal it refreshes every iteration; written to a log file (not a terminal) once
    every ``log_every`` iterations, a line per logging window, so a run of many hours writes
    a log of kilobytes, not megabytes."""

    def __init__(self, log_every: int = 1):
        super().__init__(refresh_rate=1 if sys.stderr.isatty() else log_every)

    def on_train_start(self, trainer, *_) -> None:
        super().on_train_start(trainer, *_)
        self._span_run(trainer)

    def on_train_epoch_start(self, trainer, *_) -> None:
        self._span_run(trainer)
        self.train_progress_bar.set_description(f"Iteration (epoch {trainer.current_epoch})")

    def _span_run(self, trainer) -> None:
        """Span the bar over the whole run; a resumed run starts it at the iteration reached,
        as tqdm's ``initial``, so its rate and ETA count only this attempt's iterations."""
        bar = self.train_progress_bar
        if bar.total != trainer.max_steps:
            bar.reset(total=trainer.max_steps)
            bar.initial = bar.n = bar.last_print_n = trainer.global_step
            bar.refresh()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        bar = self.train_progress_bar
        if self._should_update(trainer.global_step, bar.total):
            bar.n = trainer.global_step
            bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=False)
            bar.refresh()
