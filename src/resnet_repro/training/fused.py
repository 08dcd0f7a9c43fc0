"""Training K runs of one depth at once as one fused model (``models.fused``), each run keeping
everything of its own: seed and initialization, batch order and augmentation draws, BatchNorm
statistics, SGD momentum, learning-rate schedule and warm-up gate. A fused step is, for every
run, the ordinary loop's step with the same config (tests/test_fused.py checks the weights and
momentum after several steps, a warm-up gate opening among them), so a fused group can hand its
runs to the ordinary loop and the other way round.

Host syncs happen once per logging window (the window's errors, which the warm-up gates need).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig

from resnet_repro.data.cifar10 import RandomBatches
from resnet_repro.models.fused import FusedCifarResNet


class RunStream:
    """One run's training batches: its own order (``RandomBatches`` of its seed, epoch after
    epoch) and its own augmentation draws (``generator``)."""

    def __init__(self, datamodule, seed: int, generator: torch.Generator):
        self.datamodule, self.generator = datamodule, generator
        images = datamodule.splits["train"].tensors[0]
        self.sampler = RandomBatches(len(images), datamodule.batch_size, seed,
                                     device=datamodule.device)
        self.batches = iter(())

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        index = next(self.batches, None)
        if index is None:
            self.batches = iter(self.sampler)
            index = next(self.batches)
        images, labels = self.datamodule.splits["train"][index]
        return self.datamodule.prepare(images, training=True, generator=self.generator), labels

    def end_epoch_if_done(self, iteration: int) -> None:
        if iteration % len(self.sampler) == 0:
            self.sampler.set_epoch(iteration // len(self.sampler))
            self.batches = iter(())


class FusedRuns:
    """The runs of ``configs`` (one depth, plain or option A; one batch size, momentum and
    weight decay; seeds, learning rates and schedules free) on ``datamodule``'s data, in
    ``dtype`` (float64 to check the math against the ordinary loop's ``64-true``)."""

    def __init__(self, configs: list[DictConfig], datamodule, dtype=torch.float32):
        nets, self.schedules, self.streams, self.base_lrs = [], [], [], []
        datamodule.setup()
        for cfg in configs:
            pl.seed_everything(cfg.seed, verbose=False)
            nets.append(instantiate(cfg.model))
            # the ordinary loop's augmentation draws from torch's generator from here on
            generator = torch.Generator().manual_seed(0)
            generator.set_state(torch.get_rng_state())
            self.streams.append(RunStream(datamodule, cfg.seed, generator))
            self.schedules.append(instantiate(cfg.module.schedule))
            self.base_lrs.append(float(cfg.module.optimizer.lr))
        optimizer = configs[0].module.optimizer
        self.momentum, self.weight_decay = float(optimizer.momentum), float(optimizer.weight_decay)
        self.log_every = configs[0].module.log_every
        self.model = FusedCifarResNet.from_nets(nets).to(datamodule.device, dtype)
        self.dtype = dtype
        self.model.to(memory_format=torch.channels_last)
        self.momentum_buffers: dict[str, torch.Tensor] = {}
        self.iteration = 0
        runs = len(configs)
        self.window_wrong = torch.zeros(runs, device=datamodule.device)
        self.window_count = 0

    @property
    def runs(self) -> int:
        return self.model.runs

    def learning_rates(self) -> torch.Tensor:
        """Each run's rate for this iteration's update: base x its schedule's factor."""
        return torch.tensor([lr * schedule(self.iteration) for lr, schedule in
                             zip(self.base_lrs, self.schedules, strict=True)])

    def step(self) -> torch.Tensor:
        """One update of every run; returns each run's loss (on the device, not synced)."""
        lrs = self.learning_rates()
        batches = [stream.next() for stream in self.streams]
        images = torch.cat([images for images, _ in batches], dim=1).to(self.dtype)
        labels = torch.stack([labels for _, labels in batches], dim=1)
        self.model.train()
        logits = self.model(images.contiguous(memory_format=torch.channels_last))
        losses = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none").mean(dim=0)
        self.model.zero_grad(set_to_none=True)
        losses.sum().backward()  # each run's gradient is that of its own mean loss
        self._sgd(lrs)
        self.window_wrong += (logits.detach().argmax(dim=2) != labels).sum(dim=0)
        self.window_count += labels.shape[0]
        self.iteration += 1
        for stream in self.streams:
            stream.end_epoch_if_done(self.iteration)
        if self.iteration % self.log_every == 0:
            self._end_window()
        return losses.detach()

    def _end_window(self) -> None:
        """Each run's training error over the window, reported to its schedule (the gate)."""
        errors = (100.0 * self.window_wrong / self.window_count).tolist()  # the one host sync
        for schedule, error in zip(self.schedules, errors, strict=True):
            report = getattr(schedule, "report_training_error", None)
            if report is not None:
                report(error, self.iteration)
        self.window_wrong.zero_()
        self.window_count = 0

    @torch.no_grad()
    def _sgd(self, lrs: torch.Tensor) -> None:
        """torch.optim.SGD's update (weight decay, momentum, no dampening), with each run's
        own rate on its own slice of every parameter."""
        for name, parameter in self.model.named_parameters():
            gradient = parameter.grad.add(parameter, alpha=self.weight_decay)
            buffer = self.momentum_buffers.get(name)
            if buffer is None:
                buffer = self.momentum_buffers[name] = gradient.clone()
            else:
                buffer.mul_(self.momentum).add_(gradient)
            rate = run_slices(lrs.to(parameter.device), parameter, self.runs)
            parameter.sub_(buffer * rate)

    @torch.no_grad()
    def evaluate(self, split: str = "test", batch_size: int = 250) -> list[float]:
        """Each run's error (%) on ``split`` of the data module, BN with its own statistics:
        every run sees the same images, in its own channels."""
        dataset = self.streams[0].datamodule.splits[split]
        images, labels = dataset.tensors
        wrong = torch.zeros(self.runs, device=labels.device)
        self.model.eval()
        for batch, truth in zip(images.split(batch_size), labels.split(batch_size), strict=True):
            inputs = self.streams[0].datamodule.prepare(batch, training=False).to(self.dtype)
            inputs = inputs.repeat(1, self.runs, 1, 1).contiguous(memory_format=torch.channels_last)
            wrong += (self.model(inputs).argmax(dim=2) != truth[:, None]).sum(dim=0)
        return (100.0 * wrong / len(labels)).tolist()

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        return self.model.state_dicts()

    def momentum_of(self, run: int) -> dict[str, torch.Tensor]:
        """Run ``run``'s momentum buffers, by the ordinary net's parameter names."""
        return {ordinary_name(name): run_slice(name, buffer, run, self.runs)
                for name, buffer in self.momentum_buffers.items()}


def run_slices(values: torch.Tensor, parameter: torch.Tensor, runs: int) -> torch.Tensor:
    """A per-run value (K,) spread over a fused parameter's layout: runs along the first axis,
    in equal slices, broadcast over the others."""
    per_run = parameter.shape[0] // runs
    return values.repeat_interleave(per_run).view(-1, *([1] * (parameter.dim() - 1)))


def run_slice(name: str, tensor: torch.Tensor, run: int, runs: int) -> torch.Tensor:
    """Run ``run``'s part of the fused tensor ``name`` (the layout of ``models.fused``)."""
    return tensor[run] if name.startswith("fc_") else tensor.chunk(runs)[run]


def ordinary_name(fused_name: str) -> str:
    return f"fc.{fused_name[3:]}" if fused_name.startswith("fc_") else fused_name
