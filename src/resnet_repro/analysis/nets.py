"""What the analyses of trained nets share (gradients, identity, lesion, landscape): the
finished runs of a sweep with their nets, the data as evaluation sees it, evaluation itself,
and the results folder's README."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from resnet_repro.analysis.collect import curves_of, final_error, hardware_of
from resnet_repro.runs import RunFolder, hardware


@dataclass
class TrainedRun:
    """A finished run: its record and its net (final weights, evaluation mode)."""

    folder: RunFolder
    record: dict

    @property
    def net_name(self) -> str:
        return self.record["net"]

    @property
    def depth(self) -> int:
        return int(self.record["model"]["depth"])

    @property
    def shortcut(self) -> str:
        return self.record["model"]["shortcut"] or "none"

    def load_net(self) -> nn.Module:
        return self.folder.load_net()

    def describe(self) -> str:
        attempt = self.record["attempts"][-1]
        return (f"{self.net_name} (seed {self.record['seed']}, run {self.folder.name}, "
                f"profile {self.record['profile']}, {self.record['iterations']} iterations, "
                f"precision {self.folder.precision()}, "
                f"commit {attempt['commit'][:10]}, data "
                f"{Path(self.record['dataset']['source']).name}, trained on "
                f"{hardware_of(attempt)})")


def finished_runs(directories: list[Path]) -> list[TrainedRun]:
    """The sweep's runs that finished, in the sweep's order; the others are left out."""
    runs = []
    for directory in directories:
        folder = RunFolder(directory)
        record = folder.read_record()
        if record.get("status") == "done":
            runs.append(TrainedRun(folder, record))
    return runs


def dataset(config: DictConfig, split: str, count: int | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` images of ``split`` (train or test; all by default), normalized as evaluation
    sees them (no augmentation), with their labels. A subset is a fixed random one (seed 0):
    the splits are stored class by class, so their first images are all of one class."""
    datamodule = instantiate(config.data, seed=config.seed)
    datamodule.setup()
    images, labels = datamodule.splits[split].tensors
    if count is not None and count < len(labels):
        chosen = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))[:count]
        images, labels = images[chosen], labels[chosen]
    return datamodule.prepare(images, training=False), labels


@torch.inference_mode()
def evaluate(net: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 250) -> tuple[float, float]:
    """(mean cross-entropy loss, error %) of ``net`` as it is (mode unchanged) on the set."""
    loss, wrong = 0.0, 0
    for batch, truth in zip(images.split(batch_size), labels.split(batch_size), strict=True):
        logits = net(batch)
        loss += F.cross_entropy(logits, truth, reduction="sum").item()
        wrong += (logits.argmax(dim=1) != truth).sum().item()
    return loss / len(labels), 100.0 * wrong / len(labels)


def save_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def write_readme(out_dir: Path, title: str, command: str, runs: list[TrainedRun],
                 measured: list[str], findings: list[str], figures: list[str],
                 protocol: list[str]) -> Path:
    """README.md of an analysis of trained nets: how to redo it, which runs (with their own
    test errors), what was measured, what it shows, the figures."""
    test_errors = {run.folder.name: _final_test_error(run) for run in runs}
    lines = [
        f"# {title}", "",
        f"Written by the analysis on {time.strftime('%Y-%m-%d')}. Redo with:", "",
        f"    {command}", "",
        "## The trained nets", "",
        f"- The analysis ran on {hardware_of(hardware())}.",
        *(f"- {run.describe()}: test error {test_errors[run.folder.name]:.2f} %"
          for run in runs),
        *(["- Their profile, as its config (conf/protocol/) describes it:", "",
           *(f"  > {line}" if line else "  >" for line in protocol)] if protocol else []),
        "", "## What was measured", "", *measured,
        "", "## What it shows", "", *findings, "",
        *(f"![{name}]({name})" for name in figures), "",
    ]
    path = out_dir / "README.md"
    path.write_text("\n".join(lines))
    return path


def _final_test_error(run: TrainedRun) -> float:
    return final_error(curves_of(run.folder.read_metrics()), "test",
                       run.record.get("max_steps"))


@dataclass
class Context:
    """What an analysis of trained nets is given: the sweep's first config (data, profile,
    analysis settings), the sweep's run folders, where to write, and how to redo it."""

    config: DictConfig
    directories: list[Path]
    out_dir: Path
    command: str
    protocol: list[str]

    @property
    def budget(self) -> DictConfig:
        """How much each analysis evaluates at this profile (conf/protocol/<data>/)."""
        return self.config.analysis.budget

    def title(self, what: str) -> str:
        return f"{what}, profile `{self.config.profile_name}`"
