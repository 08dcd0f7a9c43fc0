"""Figure 1: training error (left) and test error (right) of plain-20 and plain-56 on CIFAR-10
over the iterations; the deeper plain net errs more on both: the degradation problem.

The grid is ``conf/experiment/fig1.yaml``; this is the rest of the recipe. It is also the
recipe of a sweep run without an experiment (every net's error curves).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from resnet_repro.analysis.context import Context
from resnet_repro.analysis.plots import (
    SPLIT_LABELS,
    draw_net,
    finish_axis,
    plt,
    series_in_order,
)
from resnet_repro.analysis.report import heading, write_results


def plot_error_curves(curves: pd.DataFrame, title: str, y_max: float | None = None):
    """Figure 1's layout: training error (left) and test error (right), one line per net."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for axis, (split, label) in zip(axes, SPLIT_LABELS.items(), strict=True):
        for series in series_in_order(curves):
            draw_net(axis, curves, series, split, label=series, linewidth=1.5)
        finish_axis(axis, y_max, label)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def run(context: Context) -> dict[str, Path]:
    curves, _ = context.tables
    figure = plot_error_curves(curves, heading(context), context.config.analysis.y_max)
    return write_results(context, figure)
