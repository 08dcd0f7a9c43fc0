"""Figure 4 and Table 2: plain-18/34 against ResNet-18/34 (option A) on ImageNet; training
error (thin) and center-crop validation error (bold) over the iterations, plain nets (left)
and ResNets (right), and the final 10-crop top-1 validation error beside the paper's.

The grid is ``conf/experiment/fig4.yaml``; this is the rest of the recipe.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from resnet_repro.analysis.context import Context
from resnet_repro.analysis.paper import TABLE2_TOP1
from resnet_repro.analysis.plots import plot_panels
from resnet_repro.analysis.report import heading, write_results
from resnet_repro.analysis.tables import Table, imagenet_markdown, imagenet_table
from resnet_repro.runs import PLAIN

TABLE2 = Table("table2", "Table 2: ImageNet top-1 error (%), 10-crop testing, validation",
               functools.partial(imagenet_table, paper=TABLE2_TOP1), imagenet_markdown)


def plot_imagenet_panels(curves: pd.DataFrame, title: str, y_max: float | None = None):
    """Figure 4's layout: plain nets (left), ResNets (right); thin = training error, bold =
    validation error of the center crops."""
    plain = curves["shortcut"] == PLAIN
    panels = {"plain": curves[plain], "ResNet": curves[~plain]}
    return plot_panels(panels, f"{title} (thin: training error, bold: center-crop validation "
                       "error)", y_max, "val", {"linewidth": 0.8}, {"linewidth": 2.2})


def run(context: Context) -> dict[str, Path]:
    curves, _ = context.tables
    figure = plot_imagenet_panels(curves, heading(context), context.config.analysis.y_max)
    return write_results(context, figure, tables=[TABLE2])
