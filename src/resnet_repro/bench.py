"""Throughput side by side, in one process, for ResNet-20 and ResNet-56 at batch 128:

    bare_step         a bare PyTorch training step on tensors already in memory (the floor)
    our_loop          the project's Lightning loop, data module, augmentation and logging,
                      built from the same config as ``make reproduce-fig1``
    torchvision_loop  torchvision's usual CIFAR pipeline (PIL RandomCrop, RandomHorizontalFlip,
                      ToTensor, Normalize, a DataLoader) feeding the same model and optimizer
    our_data, torchvision_data   the two data pipelines alone, no model

Each is timed after a warm-up, in images per second, on the GPU where there is one.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from resnet_repro.config import compose_train
from resnet_repro.runs import git_commit, hardware
from resnet_repro.training.launch import make_trainer

NETS = {"resnet-20": 20, "resnet-56": 56}
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
RATIOS = {"our_loop": "bare_step", "torchvision_loop": "bare_step",
          "our_data": "torchvision_data"}


def images_per_second(step: Callable[[], int], warmup: int, seconds: float) -> float:
    """Run ``step`` (which returns how many images it handled) ``warmup`` times, then for at
    least ``seconds``, and return the images per second of the timed part."""
    for _ in range(warmup):
        step()
    synchronize()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        count += step()
    synchronize()
    return count / (time.perf_counter() - start)


def synchronize() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def compose_config(depth: int, source: str, *overrides: str):
    return compose_train(["experiment=fig1", "profile=cpu", "model.shortcut=A",
                          f"model.depth={depth}", f"data.source={source}", *overrides])


def model_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer,
               batches: Iterator) -> Callable[[], int]:
    """One SGD step of ``net`` on the next batch of ``batches``."""
    def step() -> int:
        images, labels = next(batches)
        images = images.to(DEVICE, non_blocking=True).contiguous(memory_format=torch.channels_last)
        labels = labels.to(DEVICE, non_blocking=True)
        loss = F.cross_entropy(net(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(labels)
    return step


def make_model(cfg) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    net = instantiate(cfg.model).to(DEVICE, memory_format=torch.channels_last).train()
    return net, instantiate(cfg.module.optimizer)(net.parameters())


def forever(make_iterator: Callable[[], Iterator]) -> Iterator:
    while True:
        yield from make_iterator()


def our_batches(datamodule) -> Iterator:
    """The project's pipeline: batched index, then normalize and augment as tensors."""
    for images, labels in datamodule.train_dataloader():
        images = datamodule.prepare(images.to(DEVICE, non_blocking=True), training=True)
        yield images, labels.to(DEVICE, non_blocking=True)


class PILArrays(Dataset):
    """What ``torchvision.datasets.CIFAR10`` does per item: array -> PIL image -> transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images = images.permute(0, 2, 3, 1).numpy()
        self.labels, self.transform = labels.tolist(), transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index])), self.labels[index]


def torchvision_loader(datamodule, workers: int) -> DataLoader:
    images, labels = datamodule.splits["train"].tensors
    mean = images.float().div(255).mean(dim=(0, 2, 3)).tolist()
    std = images.float().div(255).std(dim=(0, 2, 3)).tolist()
    transform = transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize(mean, std),
    ])
    return DataLoader(PILArrays(images, labels, transform), batch_size=datamodule.batch_size,
                      shuffle=True, drop_last=True, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=DEVICE.type == "cuda")


class StopAfter(pl.Callback):
    """Times iterations ``warmup`` to ``warmup + count`` of a fit, then stops it."""

    def __init__(self, warmup: int, count: int, batch_size: int):
        self.warmup, self.count, self.batch_size = warmup, count, batch_size
        self.images_per_second = float("nan")

    def on_train_batch_start(self, trainer, *_) -> None:
        if trainer.global_step == self.warmup:
            synchronize()
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, *_) -> None:
        if trainer.global_step == self.warmup + self.count:
            synchronize()
            elapsed = time.perf_counter() - self.start
            self.images_per_second = self.count * self.batch_size / elapsed
            trainer.should_stop = True


def our_loop(cfg, warmup: int, count: int) -> float:
    datamodule = instantiate(cfg.data, seed=cfg.seed)
    module = instantiate(cfg.module, net=instantiate(cfg.model))
    timer = StopAfter(warmup, count, datamodule.batch_size)
    with tempfile.TemporaryDirectory() as directory:
        trainer = make_trainer(cfg, Path(directory), 0, callbacks=[timer])
        trainer.fit(module, datamodule=datamodule)
    return timer.images_per_second


def count_images(stream: Iterator) -> Callable[[], int]:
    return lambda: len(next(stream)[1])


def bench_net(net_name: str, source: str, seconds: float, workers: int) -> dict[str, float]:
    cfg = compose_config(NETS[net_name], source, "+trainer.limit_val_batches=0")
    pl.seed_everything(0, verbose=False)
    datamodule = instantiate(cfg.data, seed=0)
    datamodule.setup()
    loader = torchvision_loader(datamodule, workers)
    our_stream = forever(lambda: our_batches(datamodule))
    torchvision_stream = forever(lambda: iter(loader))
    bare = images_per_second(model_step(*make_model(cfg), itertools.repeat(next(our_stream))),
                             warmup=3, seconds=seconds)
    timed_steps = max(10, round(seconds * bare / datamodule.batch_size))
    return {
        "bare_step": bare,
        "our_loop": our_loop(cfg, warmup=3, count=timed_steps),
        "torchvision_loop": images_per_second(
            model_step(*make_model(cfg), torchvision_stream), warmup=3, seconds=seconds),
        "our_data": images_per_second(count_images(our_stream), warmup=3, seconds=seconds / 4),
        "torchvision_data": images_per_second(
            count_images(torchvision_stream), warmup=3, seconds=seconds / 4),
    }


def run_bench(
    source: str, seconds: float = 20.0, workers: int = 2, nets: tuple[str, ...] = tuple(NETS)
) -> pd.DataFrame:
    """Every measurement for every net, with each ratio that the targets are stated in."""
    rows = []
    for net_name in nets:
        measured = bench_net(net_name, source, seconds, workers)
        for what, rate in measured.items():
            reference = RATIOS.get(what)
            rows.append({
                "what": what, "net": net_name, "img_per_s": round(rate, 1),
                "ratio_to": reference or "",
                "ratio": round(rate / measured[reference], 3) if reference else np.nan,
            })
    return pd.DataFrame(rows)


def machine_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name().lower().replace("nvidia", "").strip().split()[0]
    return "cpu"


def save_measurement(table: pd.DataFrame, stem: Path, settings: dict) -> list[Path]:
    """``stem``.csv (the table) and ``stem``.json (date, ``settings``, commit, hardware), so that
    every number says where it was measured."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, record = stem.with_suffix(".csv"), stem.with_suffix(".json")
    table.to_csv(csv, index=False)
    record.write_text(json.dumps({"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **settings,
                                  **git_commit(), **hardware()}, indent=2))
    return [csv, record]
