"""Throughput side by side, in one process, for ResNet-20 and ResNet-56 at batch 128:

    bare_step         a bare PyTorch training step on tensors already in memory (the floor)
    our_loop          the project's Lightning loop, data module, augmentation and logging,
                      built from the same config as ``make reproduce-fig1``
    torchvision_loop  torchvision's usual CIFAR pipeline (PIL RandomCrop, RandomHorizontalFlip,
                      ToTensor, Normalize, a DataLoader) feeding the same model and optimizer
    our_data, torchvision_data   the two data pipelines alone, no model

Each is timed after a warm-up, in images per second, on the GPU where there is one.

The speed settings (``SETTINGS``: fp32 or bf16 autocast, eager or ``torch.compile``) are measured
on their own: the bare step and the loop at each setting, their ratio, each setting's loop
against the default loop (fp32, eager), and one evaluation of the test set (10,000 images) in
seconds, with its cost over a paper run's 64 evaluations.
"""

from __future__ import annotations

import contextlib
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

from resnet_repro.bf16 import bf16_autocast
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


def autocast(cfg):
    """What Lightning's ``trainer.precision`` does around the forward pass."""
    if cfg.trainer.precision == "bf16-mixed":
        return bf16_autocast(DEVICE.type, choice=cfg.bf16_kernels)
    return contextlib.nullcontext()


def model_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer,
               batches: Iterator, cfg) -> Callable[[], int]:
    """One SGD step of ``net`` on the next batch of ``batches``, in the precision of ``cfg``."""
    def step() -> int:
        images, labels = next(batches)
        images = images.to(DEVICE, non_blocking=True).contiguous(memory_format=torch.channels_last)
        labels = labels.to(DEVICE, non_blocking=True)
        with autocast(cfg):
            loss = F.cross_entropy(net(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(labels)
    return step


def make_model(cfg) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The net and its optimizer as the loop builds them, compiled where ``module.compile``
    says so."""
    net = instantiate(cfg.model).to(DEVICE, memory_format=torch.channels_last).train()
    if cfg.module.compile is not None:
        net.compile(**cfg.module.compile)
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
    """Times ``windows`` spans of ``count`` iterations each after ``warmup`` iterations of a
    fit, then stops it; ``images_per_second`` is the best span's (the least disturbed)."""

    def __init__(self, warmup: int, count: int, batch_size: int, windows: int = 1):
        self.warmup, self.count, self.batch_size = warmup, count, batch_size
        self.marks = [warmup + k * count for k in range(windows + 1)]
        self.times: list[float] = []

    def on_train_batch_end(self, trainer, *_) -> None:
        if trainer.global_step in self.marks:
            synchronize()
            self.times.append(time.perf_counter())
            trainer.should_stop = trainer.global_step == self.marks[-1]

    @property
    def images_per_second(self) -> float:
        spans = [later - earlier for earlier, later in itertools.pairwise(self.times)]
        return self.count * self.batch_size / min(spans) if spans else float("nan")


def our_loop(cfg, warmup: int, count: int, windows: int = 1) -> float:
    datamodule = instantiate(cfg.data, seed=cfg.seed)
    module = instantiate(cfg.module, net=instantiate(cfg.model))
    timer = StopAfter(warmup, count, datamodule.batch_size, windows)
    with tempfile.TemporaryDirectory() as directory:
        trainer = make_trainer(cfg, Path(directory), 0, callbacks=[timer])
        trainer.fit(module, datamodule=datamodule)
    return timer.images_per_second


def evaluation_seconds(cfg) -> float:
    """One evaluation of the whole test set by the loop, after one batch that warms it up (and
    compiles the evaluation graph, where the net is compiled)."""
    datamodule = instantiate(cfg.data, seed=cfg.seed)
    module = instantiate(cfg.module, net=instantiate(cfg.model))
    with tempfile.TemporaryDirectory() as directory:
        trainer = make_trainer(cfg, Path(directory), 0)
        datamodule.trainer = trainer
        datamodule.setup()
        images = datamodule.splits["test"].tensors[0][: datamodule.eval_batch_size]
        with torch.inference_mode(), autocast(cfg):
            module.eval()(datamodule.prepare(images.to(DEVICE), training=False))
        start = time.perf_counter()
        trainer.validate(module, datamodule=datamodule, verbose=False)
        return time.perf_counter() - start


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
    bare = images_per_second(model_step(*make_model(cfg), itertools.repeat(next(our_stream)), cfg),
                             warmup=3, seconds=seconds)
    timed_steps = max(10, round(seconds * bare / datamodule.batch_size))
    return {
        "bare_step": bare,
        "our_loop": our_loop(cfg, warmup=3, count=timed_steps),
        "torchvision_loop": images_per_second(
            model_step(*make_model(cfg), torchvision_stream, cfg), warmup=3, seconds=seconds),
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


#: The speed settings measured side by side, as config overrides; fp32 eager is the default.
SETTINGS = {
    "fp32": ["trainer.precision=32-true", "module.compile=null"],
    "fp32+compile": ["trainer.precision=32-true", "module.compile={}"],
    "bf16": ["trainer.precision=bf16-mixed", "module.compile=null"],
    "bf16+compile": ["trainer.precision=bf16-mixed", "module.compile={}"],
    # bf16 by one kernel or the other, whichever the hardware has (resnet_repro.bf16)
    "bf16+native-kernels": ["trainer.precision=bf16-mixed", "module.compile=null",
                            "bf16_kernels=native"],
    "bf16+fp32-kernels": ["trainer.precision=bf16-mixed", "module.compile=null",
                          "bf16_kernels=fp32"],
}
#: The settings measured unless others are asked for (bf16 is one of the two kernels' settings).
DEFAULT_SETTINGS = ("fp32", "fp32+compile", "bf16", "bf16+compile")
#: Evaluations of the test set in one paper-profile CIFAR-10 run (every 1,000 of 64,000).
PAPER_EVALUATIONS = 64


def bench_setting(net_name: str, source: str, setting: str, seconds: float) -> dict:
    """The bare step and the loop at one setting (best of 3 spans each), and one evaluation."""
    cfg = compose_config(NETS[net_name], source, "+trainer.limit_val_batches=0",
                         "trainer.enable_progress_bar=false", *SETTINGS[setting])
    pl.seed_everything(0, verbose=False)
    datamodule = instantiate(cfg.data, seed=0)
    datamodule.setup()
    step = model_step(*make_model(cfg), itertools.repeat(next(our_batches(datamodule))), cfg)
    bare = max(images_per_second(step, warmup=5 if k == 0 else 0, seconds=seconds / 3)
               for k in range(3))
    span = max(5, round(seconds / 3 * bare / datamodule.batch_size))
    evaluation = evaluation_seconds(compose_config(NETS[net_name], source, *SETTINGS[setting]))
    return {
        "net": net_name, "setting": setting, "bare_step": round(bare, 1),
        "our_loop": round(our_loop(cfg, warmup=5, count=span, windows=3), 1),
        "evaluation_s": round(evaluation, 1),
        "evaluations_per_paper_run_s": round(evaluation * PAPER_EVALUATIONS),
    }


def run_settings_bench(source: str, seconds: float = 15.0,
                       nets: tuple[str, ...] = tuple(NETS),
                       settings: tuple[str, ...] = DEFAULT_SETTINGS) -> pd.DataFrame:
    """Every setting for every net, with the loop's ratio to the bare step at that setting and
    to the default loop (fp32, eager: the first setting)."""
    table = pd.DataFrame([bench_setting(net, source, setting, seconds)
                          for net in nets for setting in settings])
    table["loop_vs_bare"] = (table["our_loop"] / table["bare_step"]).round(3)
    default_loop = table.groupby("net")["our_loop"].transform("first")
    table["loop_vs_default_loop"] = (table["our_loop"] / default_loop).round(3)
    return table


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
