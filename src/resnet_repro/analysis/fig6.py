"""Figure 6: training (dashed) and test (bold) error of plain nets (left), ResNets (middle) and
the two deepest ResNets (right) on CIFAR-10; deeper plain nets err more, deeper ResNets less.

The grid is ``conf/experiment/fig6.yaml``; this is the rest of the recipe. Table 6 draws the
same panels (``table6``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from resnet_repro.analysis.context import Context
from resnet_repro.analysis.plots import plot_panels
from resnet_repro.analysis.report import heading, write_results
from resnet_repro.runs import PLAIN


def plot_family_panels(curves: pd.DataFrame, title: str, y_max: float | None = None):
    """Figure 6's layout: plain nets (left), ResNets up to 110 layers (middle), the two deepest
    ResNets (right: the paper's ResNet-110 and ResNet-1202; at a profile whose grid stops at 56,
    ResNet-44 and 56); dashed = training error, bold = test error."""
    plain = curves["shortcut"] == PLAIN
    deepest = sorted(curves.loc[~plain, "depth"].unique())[-2:]
    panels = {
        "plain": curves[plain],
        "ResNet": curves[~plain & (curves["depth"] <= 110)],
        " and ".join(f"ResNet-{d}" for d in deepest) or "deepest ResNets":
            curves[~plain & curves["depth"].isin(deepest)],
    }
    return plot_panels(panels, f"{title} (dashed: training error, bold: test error)", y_max,
                       "test", {"linestyle": "--", "linewidth": 1}, {"linewidth": 2.2})


def run(context: Context) -> dict[str, Path]:
    curves, _ = context.tables
    figure = plot_family_panels(curves, heading(context), context.config.analysis.y_max)
    return write_results(context, figure)
