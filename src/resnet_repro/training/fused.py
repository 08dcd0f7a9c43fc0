"""Training K runs of one depth at once as one fused model (``models.fused``), each run keeping
everything of its own: seed and initialization, batch order and augmentation draws, BatchNorm
statistics, SGD momentum, learning-rate schedule and warm-up gate. A fused step is, for every
run, the ordinary loop's step with the same config (tests/test_fused.py checks the weights and
momentum after several steps, a warm-up gate opening among them), so a fused group can hand its
runs to the ordinary loop and the other way round.

Host syncs happen once per logging window (the window's errors, which the warm-up gates need).

A group hands its runs over as ordinary Lightning checkpoints (``checkpoint``), which the
ordinary loop continues, and starts from theirs (``restore``): both at the end of a logging
window, where no training error is half summed. tests/test_fused.py checks both directions
against an uninterrupted ordinary run.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.optim.lr_scheduler import LambdaLR

from resnet_repro.bf16 import bf16_autocast
from resnet_repro.data.cifar10 import RandomBatches
from resnet_repro.models.fused import FusedCifarResNet, fuse_state_dicts


class RunStream:
    """One run's training batches: its own order (``RandomBatches`` of its seed, epoch after
    epoch) and its own augmentation draws (``generator``)."""

    def __init__(self, datamodule, seed: int, generator: torch.Generator):
        self.datamodule, self.generator = datamodule, generator
        images = datamodule.splits["train"].tensors[0]
        self.done = 0  # iterations trained, read by the sampler where an epoch resumes
        self.sampler = RandomBatches(len(images), datamodule.batch_size, seed,
                                     device=datamodule.device, iterations_done=lambda: self.done)
        self.batches = iter(())

    def resume_at(self, iteration: int) -> None:
        """Continue after ``iteration`` iterations: the rest of that epoch's order."""
        self.done = iteration
        self.sampler.set_epoch(iteration // len(self.sampler))
        self.batches = iter(())

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        index = next(self.batches, None)
        if index is None:
            self.batches = iter(self.sampler)
            index = next(self.batches)
        images, labels = self.datamodule.splits["train"][index]
        return self.datamodule.prepare(images, training=True, generator=self.generator), labels

    def end_epoch_if_done(self, iteration: int) -> None:
        self.done = iteration
        if iteration % len(self.sampler) == 0:
            self.sampler.set_epoch(iteration // len(self.sampler))
            self.batches = iter(())


class FusedRuns:
    """The runs of ``configs`` (one depth, plain or option A; one batch size, momentum and
    weight decay; seeds, learning rates and schedules free) on ``datamodule``'s data, in
    ``dtype`` (float64 to check the math against the ordinary loop's ``64-true``)."""

    def __init__(self, configs: list[DictConfig], datamodule, dtype=torch.float32,
                 bf16_autocast: bool = False):
        self.configs, self.datamodule = configs, datamodule
        nets, self.schedules, self.streams, self.base_lrs = [], [], [], []
        datamodule.setup()
        for cfg in configs:
            pl.seed_everything(cfg.seed, verbose=False)
            nets.append(instantiate(cfg.model))
            # the ordinary loop's augmentation draws from torch's generator from here on
            generator = torch.Generator(datamodule.device).manual_seed(0)
            generator.set_state(torch.get_rng_state() if datamodule.device.type == "cpu"
                                else torch.cuda.get_rng_state(datamodule.device))
            self.streams.append(RunStream(datamodule, cfg.seed, generator))
            self.schedules.append(instantiate(cfg.module.schedule))
            self.base_lrs.append(float(cfg.module.optimizer.lr))
        optimizer = configs[0].module.optimizer
        if not configs[0].module.decay_norm_weights:
            raise ValueError("fused runs decay every weight alike (module.decay_norm_weights)")
        self.momentum, self.weight_decay = float(optimizer.momentum), float(optimizer.weight_decay)
        self.log_every = configs[0].module.log_every
        self.model = FusedCifarResNet.from_nets(nets).to(datamodule.device, dtype)
        self.dtype, self.bf16_autocast = dtype, bf16_autocast
        self.model.to(memory_format=torch.channels_last)
        compile_options = configs[0].module.get("compile")
        if compile_options is not None:  # as the ordinary loop: in place, the keys kept;
            self.model.compile(**compile_options)  # reduce-overhead: CUDA graphs on a GPU
        self.device_rates: tuple[list[float], torch.Tensor] | None = None
        self.momentum_buffers: dict[str, torch.Tensor] = {}
        self.iteration = 0
        runs = len(configs)
        self.window_wrong = torch.zeros(runs, device=datamodule.device)
        self.window_loss = torch.zeros(runs, device=datamodule.device, dtype=torch.float64)
        self.window_count = 0
        self.last_window: list[tuple[float, float]] = []  # each run's (loss, error %)

    @property
    def runs(self) -> int:
        return self.model.runs

    def learning_rates(self) -> torch.Tensor:
        """Each run's rate for this iteration's update: base x its schedule's factor."""
        return torch.tensor([lr * schedule(self.iteration) for lr, schedule in
                             zip(self.base_lrs, self.schedules, strict=True)])

    def step(self) -> torch.Tensor:
        """One update of every run; returns each run's loss (on the device, not synced)."""
        lrs = self.last_rates = self.learning_rates()
        batches = [stream.next() for stream in self.streams]
        images = torch.cat([images for images, _ in batches], dim=1).to(self.dtype)
        labels = torch.stack([labels for _, labels in batches], dim=1)
        self.model.train()
        with self.autocast():
            logits = self.model(images.contiguous(memory_format=torch.channels_last))
            losses = F.cross_entropy(logits.transpose(1, 2), labels, reduction="none").mean(0)
        self.model.zero_grad(set_to_none=True)
        losses.sum().backward()  # each run's gradient is that of its own mean loss
        self._sgd(self.on_device(lrs))
        self.window_wrong += (logits.detach().argmax(dim=2) != labels).sum(dim=0)
        self.window_loss += losses.detach().double() * labels.shape[0]
        self.window_count += labels.shape[0]
        self.iteration += 1
        for stream in self.streams:
            stream.end_epoch_if_done(self.iteration)
        if self.iteration % self.log_every == 0:
            self._end_window()
        return losses.detach()

    def _end_window(self) -> None:
        """Each run's training error over the window, reported to its schedule (the gate)."""
        sums = torch.stack([self.window_loss, self.window_wrong.double()]) / self.window_count
        losses, errors = sums.tolist()  # the one host sync
        errors = [100.0 * error for error in errors]
        self.last_window = list(zip(losses, errors, strict=True))
        for schedule, error in zip(self.schedules, errors, strict=True):
            report = getattr(schedule, "report_training_error", None)
            if report is not None:
                report(error, self.iteration)
        self.window_wrong.zero_()
        self.window_loss.zero_()
        self.window_count = 0

    def on_device(self, rates: torch.Tensor) -> torch.Tensor:
        """The rates on the model's device, copied only when they change (a copy from host
        memory waits for the device's queue: one per step would be a host sync per step)."""
        values = rates.tolist()
        if self.device_rates is None or self.device_rates[0] != values:
            device = next(self.model.parameters()).device
            self.device_rates = (values, rates.to(device))
        return self.device_rates[1]

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
            rate = run_slices(lrs, parameter, self.runs)
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
            with self.autocast():
                logits = self.model(inputs)
            wrong += (logits.argmax(dim=2) != truth[:, None]).sum(dim=0)
        return (100.0 * wrong / len(labels)).tolist()

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        return self.model.state_dicts()

    def momentum_of(self, run: int) -> dict[str, torch.Tensor]:
        """Run ``run``'s momentum buffers, by the ordinary net's parameter names."""
        return {ordinary_name(name): run_slice(name, buffer, run, self.runs)
                for name, buffer in self.momentum_buffers.items()}


    def checkpoint(self, run: int) -> dict:
        """Run ``run``'s state as the checkpoint that the ordinary loop writes at this
        iteration (``trainer.fit(ckpt_path=...)`` continues it): weights and BN statistics,
        SGD momentum and rate, schedule with its warm-up gate, augmentation generator, the
        loops' counters."""
        if self.window_count:
            raise RuntimeError("hand over at the end of a logging window: its training error "
                               "is half summed")
        cfg = self.configs[run]
        net = instantiate(cfg.model).to(self.dtype)  # master weights in the group's dtype
        net.load_state_dict(self.state_dicts()[run])
        module = instantiate(cfg.module, net=net)
        optimizer = module.make_optimizer(module._parameter_groups())
        scheduler = LambdaLR(optimizer, self.schedules[run])
        momentum = self.momentum_of(run)
        for index, (name, _) in enumerate(module.net.named_parameters()):
            optimizer.state[optimizer.param_groups[0]["params"][index]] = {
                "momentum_buffer": momentum[name].cpu().clone()}
        scheduler.last_epoch, scheduler._step_count = self.iteration, self.iteration + 1
        rate = self.base_lrs[run] * self.schedules[run](self.iteration)
        optimizer.param_groups[0]["lr"], scheduler._last_lr = rate, [rate]
        return {
            "epoch": (self.iteration - 1) // self.batches_per_epoch,
            "global_step": self.iteration,
            "pytorch-lightning_version": pl.__version__,
            "state_dict": {name: value.cpu() for name, value in module.state_dict().items()},
            "loops": lightning_loops(self.iteration, self.batches_per_epoch),
            "callbacks": {},
            "optimizer_states": [optimizer.state_dict()],
            "lr_schedulers": [scheduler.state_dict()],
            "random_state": self.random_state(run),
            "train_window": [0.0, 0.0, 0.0, 0],
        }

    def restore(self, checkpoints: list[dict]) -> None:
        """Continue the runs from their ordinary checkpoints (one per run, in order, all at
        one iteration, each at the end of a logging window)."""
        steps = {checkpoint["global_step"] for checkpoint in checkpoints}
        if len(steps) != 1 or any(any(c["train_window"]) for c in checkpoints):
            raise ValueError(f"runs of one group resume together at the end of a logging "
                             f"window; these checkpoints are at iterations {sorted(steps)}")
        self.iteration = steps.pop()
        states, momenta = [], []
        for run, checkpoint in enumerate(checkpoints):
            states.append({name.removeprefix("net."): value
                           for name, value in checkpoint["state_dict"].items()})
            names = [name for name, _ in instantiate(self.configs[run].model).named_parameters()]
            buffers = checkpoint["optimizer_states"][0]["state"]
            momenta.append({name: buffers[index]["momentum_buffer"]
                            for index, name in enumerate(names)})
            lambdas = checkpoint["lr_schedulers"][0]["lr_lambdas"][0]
            self.schedules[run].__dict__.update(lambdas)
            state = checkpoint["random_state"]
            generator = self.streams[run].generator
            generator.set_state(state["cpu"] if generator.device.type == "cpu" or
                                "cuda" not in state else state["cuda"][generator.device.index or 0])
            self.streams[run].resume_at(self.iteration)
        device = next(self.model.parameters()).device
        self.model.load_state_dict(fuse_state_dicts(states))
        self.momentum_buffers = {name: value.to(device, self.dtype)
                                 for name, value in fuse_state_dicts(momenta).items()}

    def autocast(self):
        """bf16 autocast around forward and loss, as Lightning's ``bf16-mixed`` does (fp32
        master weights and update); off otherwise."""
        device = next(self.model.parameters()).device.type
        return bf16_autocast(device, enabled=self.bf16_autocast,
                             choice=self.configs[0].get("bf16_kernels", "auto"))

    def random_state(self, run: int) -> dict:
        """The generators' states as the ordinary loop checkpoints them (``module.random_state``):
        the run's augmentation generator is the ordinary loop's generator of its device. A run
        continues bit for bit on the device type it was checkpointed on."""
        generator = self.streams[run].generator
        if generator.device.type == "cpu":
            return {"cpu": generator.get_state()}
        cuda = [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())]
        cuda[generator.device.index or 0] = generator.get_state()
        return {"cpu": torch.get_rng_state(), "cuda": cuda}

    @property
    def batches_per_epoch(self) -> int:
        return len(self.streams[0].sampler)


def lightning_loops(iteration: int, batches_per_epoch: int) -> dict:
    """Lightning's (2.x) loop counters in a checkpoint that ``ModelCheckpoint`` writes after
    ``iteration`` training batches: written in the last batch's ``on_train_batch_end``, so
    that batch counts as processed, not yet completed."""
    epoch, in_epoch = divmod(iteration - 1, batches_per_epoch)
    in_epoch += 1

    def counts(done: int, current: int, started: bool = True, processed: bool = True) -> dict:
        total = {"ready": done, "completed": done}
        now = {"ready": current, "completed": current}
        for key, wanted in (("started", started), ("processed", processed)):
            if wanted:
                total[key], now[key] = done, current
        return {"total": total, "current": now}

    batches = counts(iteration, in_epoch)
    batches["total"]["completed"] -= 1
    batches["current"]["completed"] -= 1
    epochs = {"ready": epoch + 1, "completed": epoch, "started": epoch + 1, "processed": epoch}
    idle = counts(0, 0)
    return {
        "fit_loop": {
            "state_dict": {},
            "epoch_loop.state_dict": {"_batches_that_stepped": iteration - 1},
            "epoch_loop.batch_progress": {**batches,
                                          "is_last_batch": in_epoch == batches_per_epoch},
            "epoch_loop.scheduler_progress": counts(iteration, in_epoch, False, False),
            "epoch_loop.automatic_optimization.state_dict": {},
            "epoch_loop.automatic_optimization.optim_progress": {"optimizer": {
                "step": counts(iteration, in_epoch, False, False),
                "zero_grad": counts(iteration, in_epoch, True, False)}},
            "epoch_loop.manual_optimization.state_dict": {},
            "epoch_loop.manual_optimization.optim_step_progress": counts(0, 0, False, False),
            "epoch_loop.val_loop.state_dict": {},
            "epoch_loop.val_loop.batch_progress": {**idle, "is_last_batch": False},
            "epoch_progress": {"total": dict(epochs), "current": dict(epochs)},
        },
        **{name: {"state_dict": {}, "batch_progress": {**idle, "is_last_batch": False}}
           for name in ("validate_loop", "test_loop")},
        "predict_loop": {"state_dict": {}, "batch_progress": idle},
    }

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
