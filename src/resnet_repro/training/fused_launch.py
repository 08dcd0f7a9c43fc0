"""``train_fused(configs)``: runs of one shape trained together as one fused model
(``training.fused``), written into their ordinary run folders as the ordinary loop writes them:
run.json with an attempt per (re)start (device, iterations, ``fused``: the group's size),
``attempt-<k>/metrics.csv`` in CSVLogger's columns, ``checkpoints/last.ckpt`` every
``checkpoint_every`` iterations and at a stop, the final weights at ``max_steps``. So the
ordinary loop continues any of them (``train``), the analysis reads them, and a group starts
from runs that the ordinary loop checkpointed (at one iteration, the end of a logging window).
"""

from __future__ import annotations

import logging
import math
import time

import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from resnet_repro.runs import RunRecord, run_directory
from resnet_repro.training.fused import FusedRuns
from resnet_repro.training.launch import (
    attempt_settings,
    checkpoint_step,
    evaluated_at,
    run_description,
)

log = logging.getLogger(__name__)

#: The precisions a group trains in (``trainer.precision`` -> master dtype, bf16 autocast):
#: as the ordinary loop's, and float64 for checking the math.
PRECISIONS = {"32-true": (torch.float32, False), "bf16-mixed": (torch.float32, True),
              "64-true": (torch.float64, False)}
#: What the runs of one group share: the shape of the fused model and the loop's rhythm.
SHARED = ("model.depth", "model.num_classes", "data.source", "data.batch_size",
          "data.augment", "module.optimizer.momentum", "module.optimizer.weight_decay",
          "module.log_every", "trainer.max_steps", "trainer.val_check_interval",
          "trainer.precision", "bf16_kernels", "checkpoint_every", "module.compile")


def fusable(configs: list[DictConfig]) -> None:
    """Raise where ``configs`` cannot train as one group, naming the key that differs."""
    for key in SHARED:
        values = {str(OmegaConf.select(cfg, key)) for cfg in configs}
        if len(values) > 1:
            raise ValueError(f"runs of one fused group share {key}; these have {sorted(values)}")
    if str(configs[0].trainer.precision) not in PRECISIONS:
        raise ValueError(f"fused groups train in {', '.join(PRECISIONS)} (trainer.precision)"
                         f", not {configs[0].trainer.precision}")
    if any(cfg.model.shortcut not in (None, "A") for cfg in configs):
        raise ValueError("fused groups hold plain nets and option-A ResNets")
    if any(cfg.get("init") is not None for cfg in configs):
        raise ValueError("fused groups start from a fresh initialization (no init)")


def train_fused(configs: list[DictConfig], deadline: float | None = None,
                device: str | torch.device | None = None) -> list[RunRecord]:
    """Train the unfinished runs of ``configs`` as one group until ``max_steps`` or
    ``deadline`` (a ``time.time()`` value; the group then stops at the end of a logging window
    with a checkpoint per run). Returns every run's record."""
    fusable(configs)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    datamodule = instantiate(configs[0].data, seed=configs[0].seed)
    fingerprint = datamodule.fingerprint
    records = [RunRecord(run_directory(cfg, fingerprint)) for cfg in configs]
    pending = [(cfg, record) for cfg, record in zip(configs, records, strict=True)
               if record.status != "done"]
    if not pending:
        return records
    starts = {checkpoint_step(record.folder.last_checkpoint) for _, record in pending}
    if len(starts) > 1:
        raise ValueError(f"the runs of a group start from one iteration; these are at "
                         f"{sorted(starts)}: group them by iteration")
    datamodule.prepare_data()
    datamodule.setup()
    datamodule.move_to(device)
    group = FusedRuns([cfg for cfg, _ in pending], datamodule,
                      *PRECISIONS[str(configs[0].trainer.precision)])
    start = starts.pop()
    if start:
        group.restore([torch.load(record.folder.last_checkpoint, map_location="cpu",
                                  weights_only=False) for _, record in pending])
    GroupWriter(group, pending, datamodule, fingerprint, start).train(deadline)
    return records


class GroupWriter:
    """The group's training loop, writing each run's folder as the ordinary loop would."""

    def __init__(self, group: FusedRuns, pending: list, datamodule, fingerprint: str,
                 start: int):
        self.group, self.pending, self.start = group, pending, start
        cfg = pending[0][0]
        self.max_steps, self.every = int(cfg.trainer.max_steps), int(cfg.module.log_every)
        self.evaluate_every = int(cfg.trainer.val_check_interval)
        self.checkpoint_every = int(cfg.checkpoint_every)
        self.rows: list[list[dict]] = [[] for _ in pending]
        self.diverged: set[int] = set()  # runs whose loss went non-finite: they stop counting
        for k, (run_cfg, record) in enumerate(pending):
            net = instantiate(run_cfg.model)
            record.start(run_cfg, run_description(run_cfg, net, datamodule, fingerprint),
                         {**attempt_settings(run_cfg, start), "fused": len(pending)})
            self._metrics_path(k).parent.mkdir(parents=True, exist_ok=True)

    def _metrics_path(self, k: int):
        record = self.pending[k][1]
        return record.folder.attempt(record.attempt) / "metrics.csv"

    def train(self, deadline: float | None) -> None:
        started = time.perf_counter()
        self._evaluate_if_missing()
        while self.group.iteration < self.max_steps:
            self.group.step()
            iteration = self.group.iteration
            if iteration % self.every == 0:
                self._log_window(iteration)
                if deadline is not None and time.time() >= deadline \
                        and iteration < self.max_steps:
                    self._checkpoint()
                    self._finish("interrupted", "budget")
                    log.info("fused group of %d stopped at iteration %d (budget)",
                             len(self.pending), iteration)
                    return
            if iteration % self.evaluate_every == 0:
                self._log_evaluation(iteration)
            if iteration % self.checkpoint_every == 0 and iteration < self.max_steps:
                self._checkpoint()
        rate = (self.max_steps - self.start) / (time.perf_counter() - started)
        log.info("fused group of %d done at %.1f iterations/s", len(self.pending), rate)
        for k, (run_cfg, record) in enumerate(self.pending):
            if k not in self.diverged:
                net = instantiate(run_cfg.model)
                net.load_state_dict(self.group.state_dicts()[k])
                record.save_weights(net)
                record.folder.remove_checkpoints()
        self._finish("done")

    def _log_window(self, iteration: int) -> None:
        """Each run's window: CSVLogger's row (epoch, lr of the window's last update, step,
        train/err, train/loss)."""
        rates = self.group.last_rates.tolist()
        epoch = (iteration - 1) // self.group.batches_per_epoch
        for k, (loss, error) in enumerate(self.group.last_window):
            if not math.isfinite(loss):
                self.diverged.add(k)
            self.rows[k].append({"epoch": epoch, "lr": rates[k], "step": iteration - 1,
                                 "train/err": error, "train/loss": loss})
        self._write_metrics()

    def _evaluate_if_missing(self) -> None:
        """A group resumed from checkpoints written at an evaluation iteration before its
        evaluation (the ordinary loop checkpoints first) evaluates first, as ``train`` does."""
        missing = {k for k, (cfg, record) in enumerate(self.pending)
                   if not evaluated_at(record.folder, self.start, cfg)}
        if self.start and missing:
            self._log_evaluation(self.start, missing)

    def _log_evaluation(self, iteration: int, runs: set[int] | None = None) -> None:
        epoch = (iteration - 1) // self.group.batches_per_epoch
        for k, error in enumerate(self.group.evaluate("test")):
            if runs is None or k in runs:
                self.rows[k].append({"epoch": epoch, "step": iteration - 1, "test/err": error})
        self._write_metrics()

    def _write_metrics(self) -> None:
        columns = ["epoch", "lr", "step", "test/err", "train/err", "train/loss"]
        for k, rows in enumerate(self.rows):
            pd.DataFrame(rows).reindex(columns=columns).to_csv(self._metrics_path(k),
                                                               index=False)

    def _checkpoint(self) -> None:
        for k, (_, record) in enumerate(self.pending):
            record.folder.checkpoints.mkdir(parents=True, exist_ok=True)
            partial = record.folder.last_checkpoint.with_suffix(".tmp")
            torch.save(self.group.checkpoint(k), partial)
            partial.replace(record.folder.last_checkpoint)

    def _finish(self, status: str, error: str | None = None) -> None:
        for k, (_, record) in enumerate(self.pending):
            schedule = self.group.schedules[k]
            if hasattr(schedule, "gate_record"):
                record.data["warmup_gate"] = schedule.gate_record()
            if k in self.diverged:
                record.finish("diverged", self.group.iteration, "training loss is not finite")
            else:
                record.finish(status, self.group.iteration, error)

