"""What the analyses of trained nets share (gradients, identity, lesion, landscape): the
finished runs of a sweep with their nets, the data as evaluation sees it, evaluation itself,
and the results folder's README."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from resnet_repro.analysis.collect import curves_of, final_error, hardware_of
from resnet_repro.analysis.context import Context
from resnet_repro.runs import Run, hardware


def describe(run: Run) -> str:
    """One line naming a finished run and where its net came from."""
    return (f"{run.net} (seed {run.seed}, run {run.name}, profile {run.profile}, "
            f"{run.iterations} iterations, precision {run.precision}, "
            f"commit {run.last_attempt['commit'][:10]}, data {Path(run.data_source).name}, "
            f"trained on {hardware_of(run.last_attempt)})")


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


def write_readme(context: Context, title: str, runs: list[Run], measured: list[str],
                 findings: list[str], figures: list[str]) -> Path:
    """README.md of an analysis of trained nets: how to redo it, which runs (with their own
    test errors), the profile and the analysis budget, what was measured, what it shows, the
    figures."""
    description = context.protocol + context.budget_note
    lines = [
        f"# {title}", "",
        f"Written by the analysis on {time.strftime('%Y-%m-%d')}. Redo with:", "",
        f"    {context.command}", "",
        "## The trained nets", "",
        f"- The analysis ran on {hardware_of(hardware())} in {context.minutes:.1f} min "
        "of wall-clock time (with anything else the machine ran meanwhile).",
        *(f"- {describe(run)}: test error {final_test_error(run):.2f} %" for run in runs),
        *(["- Their profile, as its config (conf/protocol/) describes it:", "",
           *(f"  > {line}" if line else "  >" for line in description)] if description else []),
        "", "## What was measured", "", *measured,
        "", "## What it shows", "", *findings, "",
        *(f"![{name}]({name})" for name in figures), "",
    ]
    path = context.out_dir / "README.md"
    path.write_text("\n".join(lines))
    return path


def final_test_error(run: Run) -> float:
    return final_error(curves_of(run.metrics()), "test", run.max_steps)
