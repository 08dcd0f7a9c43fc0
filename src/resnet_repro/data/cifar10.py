"""CIFAR-10 as a LightningDataModule serving whole batches of uint8 tensors.

The decoded set sits in memory, on the training device by default (the GPU where there is one,
so that no batch crosses the bus); a batch is one index into it, drawn on that device too.
Per-pixel mean subtraction and the augmentation run in ``on_after_batch_transfer``, on whole
batches on the training device.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from resnet_repro.data.augment import random_crop_flip
from resnet_repro.data.distributed import batch_share, rank_and_world_size
from resnet_repro.data.sources import load_source, source_fingerprint

VAL_SIZE = 5000


class RandomBatches(Sampler[torch.Tensor]):
    """Index tensors of ``batch_size`` on ``device``, reshuffled each epoch from ``seed`` and the
    epoch number (drawn on the CPU, so every device sees the same order), the last incomplete
    batch dropped. Under DDP each rank takes its own disjoint share.

    The batch order is a function of (seed, epoch) alone, and where an epoch starts is read from
    ``iterations_done`` (the trainer's iteration count, which checkpoints hold): an epoch
    resumed after ``k`` of its batches were trained yields the rest of the same order, so a
    resumed run sees every batch once, as an uninterrupted run does."""

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 device: torch.device | str = "cpu",
                 iterations_done: Callable[[], int] = lambda: 0):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size, self.device = rank, world_size, device
        self.iterations_done, self.epoch = iterations_done, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size // self.world_size // self.batch_size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator)[self.rank :: self.world_size]
        trained = min(max(self.iterations_done() - self.epoch * len(self), 0), len(self))
        kept = order[trained * self.batch_size : len(self) * self.batch_size]
        yield from kept.to(self.device).split(self.batch_size)


def _private_generator() -> torch.Generator:
    """For a DataLoader's own draw (a worker seed at each ``iter``): without one it draws from
    torch's global generator, which the augmentation uses, so that whether an evaluation ran
    before a resume would shift every later augmentation draw."""
    return torch.Generator().manual_seed(0)


class CIFAR10DataModule(pl.LightningDataModule):
    """CIFAR-10 from ``source`` (see ``resnet_repro.data.sources``).

    Training batches are augmented (pad 4, random 32x32 crop, flip); every batch has the
    per-pixel mean of the training images subtracted (pixels scaled to [0, 1] first). With
    ``val_split`` the last 5,000 of a fixed shuffle of the training set are held out as a
    validation set (the paper's 45k/5k split); evaluation then covers it and the test set.
    With ``on_device`` the whole set moves to the trainer's device at setup (150 MB of uint8).
    """

    title = "CIFAR-10"

    def __init__(
        self,
        source: str | os.PathLike,
        cache_dir: str | os.PathLike = ".cache/data",
        batch_size: int = 128,
        eval_batch_size: int = 250,
        val_split: bool = False,
        augment: bool = True,
        on_device: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        self.source, self.cache_dir = source, cache_dir
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_split, self.augment, self.seed = val_split, augment, seed
        self.on_device = on_device
        self.splits: dict[str, TensorDataset] = {}
        self.pixel_mean: torch.Tensor | None = None

    @functools.cached_property
    def fingerprint(self) -> str:
        """The data's content hash (``sources.content_fingerprint``): it keys the runs. Known
        without any data for the official release."""
        return source_fingerprint(self.source, self.cache_dir)

    def prepare_data(self) -> None:
        """Read (download, decode) the source now, so that a missing or broken one is reported
        before a run records anything."""
        self._data  # noqa: B018

    @functools.cached_property
    def _data(self) -> dict:
        return load_source(self.source, self.cache_dir)

    @property
    def eval_names(self) -> list[str]:
        """Names of the evaluation sets, in the order of ``val_dataloader``'s loaders."""
        return ["val", "test"] if self.val_split else ["test"]

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        data = self._data
        train_images, train_labels = data["train"]
        if self.val_split:
            order = torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(0))
            held_out, kept = order[-VAL_SIZE:], order[:-VAL_SIZE]
            self.splits["val"] = TensorDataset(train_images[held_out], train_labels[held_out])
            train_images, train_labels = train_images[kept], train_labels[kept]
        self.splits["train"] = TensorDataset(train_images, train_labels)
        self.splits["test"] = TensorDataset(*data["test"])
        self.pixel_mean = train_images.float().div_(255).mean(dim=0)
        if self.on_device and self.trainer is not None:
            self.move_to(self.trainer.strategy.root_device)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def move_to(self, device: torch.device | str) -> None:
        """Hold the whole data set on ``device``."""
        for name, dataset in self.splits.items():
            self.splits[name] = TensorDataset(*(t.to(device) for t in dataset.tensors))
        self.pixel_mean = self.pixel_mean.to(device)

    def train_dataloader(self) -> DataLoader:
        """Under DDP each process draws its share of the total ``batch_size``."""
        rank, world_size = rank_and_world_size(self.trainer)
        sampler = RandomBatches(len(self.splits["train"]), batch_share(self.batch_size, world_size),
                                self.seed, rank, world_size, self.device,
                                iterations_done=self._iterations_done)
        return DataLoader(self.splits["train"], sampler=sampler, batch_size=None,
                          generator=_private_generator())

    def _iterations_done(self) -> int:
        """Iterations trained so far (0 outside a trainer's fit)."""
        return getattr(self.trainer, "global_step", 0)

    def val_dataloader(self) -> list[DataLoader]:
        return [self._eval_loader(self.splits[name]) for name in self.eval_names]

    def _eval_loader(self, dataset: TensorDataset) -> DataLoader:
        batches = torch.arange(len(dataset), device=self.device).split(self.eval_batch_size)
        return DataLoader(dataset, sampler=batches, batch_size=None,
                          generator=_private_generator())

    def prepare(self, images: torch.Tensor, training: bool,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 images to floats in [0, 1] less the per-pixel mean; augmented for training,
        with draws from ``generator`` (torch's global one by default)."""
        if self.pixel_mean.device != images.device:
            self.pixel_mean = self.pixel_mean.to(images.device)
        images = images.float().div_(255).sub_(self.pixel_mean)
        if training and self.augment:
            return random_crop_flip(images, generator=generator)
        return images

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        return self.prepare(images, training), labels
