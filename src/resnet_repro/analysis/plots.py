"""What the recipes' figures share, in the paper's style: error against iterations, one colour
per depth, each line the mean over a net's seeds with the range of its seeds shaded."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

SPLIT_LABELS = {"train": "training error (%)", "test": "test error (%)"}
DEPTH_ORDER = [20, 32, 44, 56, 110, 1202, 18, 34, 50, 101, 152]


def colour_of(depth: int) -> str:
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return palette[DEPTH_ORDER.index(depth) % len(palette) if depth in DEPTH_ORDER
                   else depth % len(palette)]


def series_in_order(curves: pd.DataFrame) -> list[str]:
    """The series (a net under one protocol: ``collect.series_labels``) in the paper's order."""
    return list(curves.drop_duplicates("series").sort_values(["shortcut", "depth"])["series"])


def draw_net(axis, curves: pd.DataFrame, series: str, split: str, **style) -> None:
    """One series' curve for one split: the mean over its seeds, the seeds' range shaded."""
    points = curves[(curves["series"] == series) & (curves["split"] == split)]
    if points.empty:
        return
    by_iteration = points.groupby("iteration")["error"]
    mean, low, high = by_iteration.mean(), by_iteration.min(), by_iteration.max()
    colour = colour_of(int(points["depth"].iloc[0]))
    axis.plot(mean.index, mean.values, color=colour, **style)
    if points["seed"].nunique() > 1:
        axis.fill_between(mean.index, low.values, high.values, color=colour, alpha=0.2,
                          linewidth=0)


def finish_axis(axis, y_max: float | None, ylabel: str) -> None:
    axis.set_xlabel("iterations")
    axis.set_ylabel(ylabel)
    axis.set_ylim(0, y_max)
    axis.grid(alpha=0.3)
    if axis.get_lines():
        axis.legend(fontsize="small")


def plot_panels(panels: dict[str, pd.DataFrame], title: str, y_max: float | None,
                eval_split: str, train_style: dict, eval_style: dict):
    """One panel per family of nets: each net's training and ``eval_split`` error curves."""
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), sharey=True)
    for axis, (name, subset) in zip(axes, panels.items(), strict=True):
        for series in series_in_order(subset):
            draw_net(axis, subset, series, "train", **train_style)
            draw_net(axis, subset, series, eval_split, label=series, **eval_style)
        if subset.empty:
            axis.text(0.5, 0.5, "not run", ha="center", va="center", transform=axis.transAxes)
        axis.set_title(name)
        finish_axis(axis, y_max, "error (%)")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def save_figure(figure, stem: Path) -> list[Path]:
    """``stem``.png and ``stem``.pdf."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    figure.savefig(paths[0], dpi=150)
    figure.savefig(paths[1], metadata={"CreationDate": None})  # same curves, same bytes
    return paths
