"""The training logic: a LightningModule around any classification network."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import grad_norm
from torch import nn
from torch.optim.lr_scheduler import LambdaLR


def random_state() -> dict:
    """The state of every generator a training run draws from: torch's CPU generator and, where
    CUDA is in use, each CUDA device's (the augmentation draws on the training device)."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def block_of(parameter: str) -> str:
    """The block a parameter belongs to: ``stage1.0.conv1.weight`` -> ``stage1.0``; a layer
    outside the stages is its own block (``conv1.weight`` -> ``conv1``, ``fc.bias`` -> ``fc``)."""
    parts = parameter.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]


class DivergedError(RuntimeError):
    """The training loss became NaN or infinite."""


class ErrorWindow:
    """Sums of loss and mistakes (top-1, and top-5 with ``top5``) over a run of batches, kept
    on the device: reading it out is the only host sync, once per window."""

    def __init__(self, top5: bool = False):
        self.top5 = top5
        self.loss_sum: torch.Tensor | float = 0.0
        self.wrong: torch.Tensor | int = 0
        self.wrong5: torch.Tensor | int = 0
        self.count = 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.loss_sum = self.loss_sum + loss.detach() * len(labels)
        self.wrong = self.wrong + (logits.argmax(dim=1) != labels).sum()
        if self.top5:
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices
            self.wrong5 = self.wrong5 + (top != labels[:, None]).all(dim=1).sum()
        self.count += len(labels)

    def state(self) -> list[float]:
        """The sums as plain numbers, for a checkpoint."""
        return [float(v) for v in (self.loss_sum, self.wrong, self.wrong5)] + [self.count]

    def load(self, state: list[float]) -> None:
        self.loss_sum, self.count = state[0], int(state[3])
        self.wrong, self.wrong5 = int(state[1]), int(state[2])

    def pop(self, total: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[float, ...]:
        """(mean loss, top-1 error %[, top-5 error %]) over the window, which starts anew.
        ``total`` sums the window's counts over processes (DDP: every process has its shard)."""
        device = self.wrong.device if isinstance(self.wrong, torch.Tensor) else None
        sums = torch.stack([torch.as_tensor(value, dtype=torch.float64, device=device)
                            for value in (self.loss_sum, self.wrong, self.wrong5, self.count)])
        if total is not None:
            sums = total(sums)
        loss_sum, wrong, wrong5, count = sums.tolist()
        self.__init__(self.top5)
        errors = (100.0 * wrong / count, 100.0 * wrong5 / count)
        return (loss_sum / count, *errors[: 2 if self.top5 else 1])


class ImageClassifier(pl.LightningModule):
    """Cross-entropy training of ``net`` with ``optimizer`` and an iteration-counted ``schedule``.

    Every ``log_every`` iterations it logs ``train/err`` (percent, averaged over the training
    mini-batches of that window), ``train/loss`` and ``lr``; each evaluation logs ``<set>/err``
    in percent over the whole evaluation set (``test``, and ``val`` with a held-out split).
    ``trainer.test`` logs ``<name>/err`` and ``err5`` (top-1 and top-5) for each test loader,
    named by the data module's ``test_names``: with batches of crops (B, crops, C, H, W) an
    image's logits are the mean over its crops; with a list of whole images at several scales
    (fully convolutional testing), the mean over the scales and their mirror images. Under DDP
    the counts are summed over processes before any error is computed.
    A ``schedule`` with an ``observe(error)`` method (``PlateauSchedule``) is shown the
    first evaluation set's error after each evaluation; one with ``report_training_error``
    (``StepSchedule``'s warm-up gate) is shown each logging window's training error.

    ``grad_norm_every`` logs each block's gradient norm every that many iterations (off by
    default; it changes nothing the run computes, so it is not part of the run's identity).
    ``compile`` holds ``torch.compile`` options, or ``None`` for eager execution;
    ``{"mode": "reduce-overhead"}`` also replays each step as a CUDA graph.
    Checkpoints also hold the random generators' states and the open training window, so that
    a resumed run is bit for bit the run it would have been (with the data module's batches,
    which follow the checkpointed iteration count).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        schedule: Callable[[int], float],
        log_every: int = 100,
        decay_norm_weights: bool = True,
        channels_last: bool = True,
        compile: dict | None = None,
        grad_norm_every: int | None = None,
    ):
        super().__init__()
        self.net, self.make_optimizer, self.schedule = net, optimizer, schedule
        self.log_every, self.decay_norm_weights = log_every, decay_norm_weights
        self.grad_norm_every = grad_norm_every
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        if compile is not None:
            self.net.compile(**compile)  # in place: the state_dict keeps the net's own keys
        self.train_window = ErrorWindow()
        self.eval_windows: dict[int, ErrorWindow] = {}
        self.test_windows: dict[int, ErrorWindow] = {}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The net on ``images``, in the module's dtype (float64 under ``64-true``: the data
        module makes float32; a no-op otherwise, mixed precision included)."""
        return self.net(images.to(self.dtype).contiguous(memory_format=self.memory_format))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels)
        self.train_window.add(loss, logits, labels)
        iteration = self.global_step + 1  # iterations done once this update is made
        if iteration % self.log_every == 0:
            self._end_training_window(iteration)
        return loss

    def _end_training_window(self, iteration: int) -> None:
        """Log the window's training error and loss and the rate of its last update, and report
        the error to the schedule (the warm-up gate). Done in the step, before the checkpoint
        callback runs, so that a checkpoint holds the state after this iteration."""
        loss, error = self.train_window.pop(self._sum_over_processes)
        if not math.isfinite(loss):
            raise DivergedError(f"training loss is {loss} at iteration {iteration}")
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.log_dict({"train/err": error, "train/loss": loss, "lr": lr}, prog_bar=True)
        report = getattr(self.schedule, "report_training_error", None)
        if report is not None:
            report(error, iteration)

    def on_before_optimizer_step(self, optimizer) -> None:
        """Every ``grad_norm_every`` iterations (a multiple of the logging interval, so that
        Lightning writes them), the gradient norm of each block (``grad_norm/<block>``)."""
        if not self.grad_norm_every or (self.global_step + 1) % self.grad_norm_every:
            return
        squares: dict[str, torch.Tensor] = {}
        for name, norm in grad_norm(self.net, norm_type=2).items():
            parameter = name.removeprefix("grad_2.0_norm/")
            if parameter != name:
                block = block_of(parameter)
                squares[block] = squares.get(block, 0.0) + norm.square()
        self.log_dict({f"grad_norm/{block}": total.sqrt() for block, total in squares.items()})

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """What a resumed run needs beyond weights, optimizer and schedule to go on exactly as
        if never stopped: the random generators (augmentation draws) and the open window;
        under DDP every process's window (each holds its shard's sums; only the first
        process writes the checkpoint, but every process calls this hook)."""
        checkpoint["random_state"] = random_state()
        window = self.train_window.state()
        if self.trainer.world_size > 1:
            gathered = self.all_gather(torch.tensor(window, dtype=torch.float64))
            window = [[float(value) for value in state] for state in gathered.cpu()]
        checkpoint["train_window"] = window

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "random_state" in checkpoint:
            set_random_state(checkpoint["random_state"])
        window = checkpoint.get("train_window")
        if window and isinstance(window[0], list):  # one window per DDP process
            window = window[self.global_rank]
        if window is not None:
            self.train_window.load(window)

    def validation_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        images, labels = batch
        logits = self(images)
        window = self.eval_windows.setdefault(dataloader_idx, ErrorWindow())
        window.add(F.cross_entropy(logits, labels), logits, labels)

    def on_validation_epoch_end(self) -> None:
        names = self._set_names("eval_names")
        errors = [window.pop(self._sum_over_processes)[1]
                  for _, window in sorted(self.eval_windows.items())]
        for name, error in zip(names, errors, strict=False):
            self.log(f"{name}/err", error, prog_bar=True)
        self.eval_windows.clear()
        observe = getattr(self.schedule, "observe", None)
        if observe is not None and errors and not self.trainer.sanity_checking:
            observe(errors[0])

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        images, labels = batch
        if isinstance(images, (list, tuple)):  # whole images at several scales, and mirrored
            logits = torch.stack([(self(x) + self(x.flip(-1))) / 2 for x in images]).mean(dim=0)
        elif images.ndim == 5:  # several crops per image: average their logits
            logits = self(images.flatten(0, 1)).unflatten(0, images.shape[:2]).mean(dim=1)
        else:
            logits = self(images)
        window = self.test_windows.setdefault(dataloader_idx, ErrorWindow(top5=True))
        window.add(F.cross_entropy(logits, labels), logits, labels)

    def on_test_epoch_end(self) -> None:
        names = self._set_names("test_names")
        for index, window in sorted(self.test_windows.items()):
            _, top1, top5 = window.pop(self._sum_over_processes)
            self.log_dict({f"{names[index]}/err": top1, f"{names[index]}/err5": top5})
        self.test_windows.clear()

    def _set_names(self, kind: str) -> list[str]:
        """The data module's names for its evaluation (``eval_names``) or test (``test_names``)
        loaders, in loader order; "test" for a data module that names none."""
        return getattr(self.trainer.datamodule, kind, ["test"])

    def _sum_over_processes(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.trainer.strategy.reduce(tensor, reduce_op="sum")

    def configure_optimizers(self):
        optimizer = self.make_optimizer(self._parameter_groups())
        scheduler = LambdaLR(optimizer, self.schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def _parameter_groups(self) -> list[dict]:
        """All parameters in one group, or, without ``decay_norm_weights``, BatchNorm's scales
        and shifts apart with no weight decay (the paper does not say which it used)."""
        if self.decay_norm_weights:
            return [{"params": list(self.net.parameters())}]
        norms = [m for m in self.net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        norm_ids = {id(p) for m in norms for p in m.parameters()}
        return [
            {"params": [p for p in self.net.parameters() if id(p) not in norm_ids]},
            {"params": [p for p in self.net.parameters() if id(p) in norm_ids],
             "weight_decay": 0.0},
        ]
