"""Figures in the paper's style: error against iterations, one colour per depth, each line the
mean over a net's seeds with the range of its seeds shaded."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

SPLIT_LABELS = {"train": "training error (%)", "test": "test error (%)"}
DEPTH_ORDER = [20, 32, 44, 56, 110, 1202, 18, 34, 50, 101, 152]


def _colour(depth: int) -> str:
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return palette[DEPTH_ORDER.index(depth) % len(palette) if depth in DEPTH_ORDER
                   else depth % len(palette)]


def _series(curves: pd.DataFrame) -> list[str]:
    """The series (a net under one protocol: ``collect.series_labels``) in the paper's order."""
    return list(curves.drop_duplicates("series").sort_values(["shortcut", "depth"])["series"])


def draw_net(axis, curves: pd.DataFrame, series: str, split: str, **style) -> None:
    """One series' curve for one split: the mean over its seeds, the seeds' range shaded."""
    points = curves[(curves["series"] == series) & (curves["split"] == split)]
    if points.empty:
        return
    by_iteration = points.groupby("iteration")["error"]
    mean, low, high = by_iteration.mean(), by_iteration.min(), by_iteration.max()
    colour = _colour(int(points["depth"].iloc[0]))
    axis.plot(mean.index, mean.values, color=colour, **style)
    if points["seed"].nunique() > 1:
        axis.fill_between(mean.index, low.values, high.values, color=colour, alpha=0.2,
                          linewidth=0)


def _finish(axis, y_max: float | None, ylabel: str) -> None:
    axis.set_xlabel("iterations")
    axis.set_ylabel(ylabel)
    axis.set_ylim(0, y_max)
    axis.grid(alpha=0.3)
    if axis.get_lines():
        axis.legend(fontsize="small")


def plot_error_curves(curves: pd.DataFrame, title: str, y_max: float | None = None):
    """Figure 1's layout: training error (left) and test error (right), one line per net."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for axis, (split, label) in zip(axes, SPLIT_LABELS.items(), strict=True):
        for series in _series(curves):
            draw_net(axis, curves, series, split, label=series, linewidth=1.5)
        _finish(axis, y_max, label)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_panels(panels: dict[str, pd.DataFrame], title: str, y_max: float | None,
                eval_split: str, train_style: dict, eval_style: dict):
    """One panel per family of nets: each net's training and ``eval_split`` error curves."""
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), sharey=True)
    for axis, (name, subset) in zip(axes, panels.items(), strict=True):
        for series in _series(subset):
            draw_net(axis, subset, series, "train", **train_style)
            draw_net(axis, subset, series, eval_split, label=series, **eval_style)
        if subset.empty:
            axis.text(0.5, 0.5, "not run", ha="center", va="center", transform=axis.transAxes)
        axis.set_title(name)
        _finish(axis, y_max, "error (%)")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_family_panels(curves: pd.DataFrame, title: str, y_max: float | None = None):
    """Figure 6's layout: plain nets (left), ResNets up to 110 layers (middle), the two deepest
    ResNets (right: the paper's ResNet-110 and ResNet-1202; at a profile whose grid stops at 56,
    ResNet-44 and 56); dashed = training error, bold = test error."""
    plain = curves["shortcut"] == "none"
    deepest = sorted(curves.loc[~plain, "depth"].unique())[-2:]
    panels = {
        "plain": curves[plain],
        "ResNet": curves[~plain & (curves["depth"] <= 110)],
        " and ".join(f"ResNet-{d}" for d in deepest) or "deepest ResNets":
            curves[~plain & curves["depth"].isin(deepest)],
    }
    return plot_panels(panels, f"{title} (dashed: training error, bold: test error)", y_max,
                       "test", {"linestyle": "--", "linewidth": 1}, {"linewidth": 2.2})


def plot_imagenet_panels(curves: pd.DataFrame, title: str, y_max: float | None = None):
    """Figure 4's layout: plain nets (left), ResNets (right); thin = training error, bold =
    validation error of the center crops."""
    plain = curves["shortcut"] == "none"
    panels = {"plain": curves[plain], "ResNet": curves[~plain]}
    return plot_panels(panels, f"{title} (thin: training error, bold: center-crop validation "
                       "error)", y_max, "val", {"linewidth": 0.8}, {"linewidth": 2.2})


FIGURES = {"error_curves": plot_error_curves, "family_panels": plot_family_panels,
           "imagenet_panels": plot_imagenet_panels}


def save_figure(figure, stem: Path) -> list[Path]:
    """``stem``.png and ``stem``.pdf."""
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    figure.savefig(paths[0], dpi=150)
    figure.savefig(paths[1], metadata={"CreationDate": None})  # same curves, same bytes
    return paths


def plot_layer_responses(responses: pd.DataFrame, title: str):
    """Figure 7's layout: each net's layer response std in layer order (top) and sorted by
    magnitude (bottom); plain nets dashed, ResNets solid; mean over seeds."""
    figure, (ordered, sorted_axis) = plt.subplots(2, 1, figsize=(8, 7))
    mean = responses.groupby(["shortcut", "depth", "series", "layer"])["std"].mean()
    for (shortcut, depth, net), layers in mean.groupby(level=["shortcut", "depth", "series"]):
        style = {"color": _colour(int(depth)), "linestyle": "--" if shortcut == "none" else "-",
                 "label": net, "linewidth": 1.2}
        values = layers.to_numpy()
        ordered.plot(range(1, len(values) + 1), values, **style)
        sorted_axis.plot(range(1, len(values) + 1), sorted(values, reverse=True), **style)
    ordered.set_xlabel("layer index (original)")
    sorted_axis.set_xlabel("layer index (sorted by magnitude)")
    for axis in (ordered, sorted_axis):
        axis.set_ylabel("std")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    return figure
