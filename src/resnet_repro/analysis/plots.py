"""Figures in the paper's style: error against iterations, one line per net."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

PANELS = (("train", "training error (%)"), ("test", "test error (%)"))


def plot_error_curves(curves: pd.DataFrame, title: str) -> plt.Figure:
    """Two panels, training error (left) and test error (right), against iterations; one line
    per net (the mean over its seeds), nets ordered by depth."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    nets = curves.drop_duplicates("net").sort_values(["shortcut", "depth"])["net"]
    for axis, (split, label) in zip(axes, PANELS, strict=True):
        for net in nets:
            points = curves[(curves["net"] == net) & (curves["split"] == split)]
            mean = points.groupby("iteration")["error"].mean()
            axis.plot(mean.index, mean.values, label=net, linewidth=1.5)
        axis.set_xlabel("iterations")
        axis.set_ylabel(label)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def save_figure(figure: plt.Figure, stem: Path) -> list[Path]:
    """``stem``.png and ``stem``.pdf."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    figure.savefig(paths[0], dpi=150)
    figure.savefig(paths[1], metadata={"CreationDate": None})  # same curves, same bytes
    return paths
