"""The loss landscape around trained weights, as Li, Xu, Taylor, Studer, Goldstein (NeurIPS
2018, "Visualizing the Loss Landscape of Neural Nets") draw it: the training loss at
θ + α δ (1D) and θ + α δ + β η (2D) for random directions δ, η that are filter-normalized:
Gaussian, then each output filter's direction scaled to the norm of that filter's weights;
BN parameters and biases get no direction (zero). A fixed seed draws the directions; BN in
evaluation mode with its stored statistics; the training images without augmentation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from matplotlib.colors import LogNorm
from torch import nn
from tqdm.auto import tqdm

from resnet_repro.analysis.nets import (
    FP32,
    dataset,
    evaluate,
    measured_per_net,
    per_net_note,
    precision_note,
    save_csv,
    write_readme,
)
from resnet_repro.analysis.plots import plt, save_figure
from resnet_repro.runs import PLAIN


def filter_normalized_direction(net: nn.Module, generator: torch.Generator
                                ) -> dict[str, torch.Tensor]:
    """A random direction in weight space, one tensor per parameter: Gaussian for every weight
    with filters (conv kernels, the fc layer's rows), each filter's part scaled to that
    filter's weight norm; zero for BN's scales and shifts and for biases (1-D parameters)."""
    direction = {}
    for name, weight in net.named_parameters():
        if weight.dim() <= 1:
            direction[name] = torch.zeros_like(weight)
            continue
        noise = torch.randn(weight.shape, generator=generator, dtype=weight.dtype)
        filters = noise.flatten(1)
        scale = weight.detach().flatten(1).norm(dim=1) / filters.norm(dim=1)
        direction[name] = (filters * scale[:, None]).view_as(weight)
    return direction


@torch.inference_mode()
def loss_surface(net: nn.Module, directions: list[dict], coordinates: list[tuple],
                 images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 precision: str = FP32) -> list[tuple[float, float]]:
    """(loss, error %) at θ + Σ cᵢ dᵢ for each tuple of coefficients c in ``coordinates``,
    evaluated in ``precision``; the net is restored to θ afterwards."""
    net.eval()
    origin = {name: p.detach().clone() for name, p in net.named_parameters()}
    results = []
    try:
        for coefficients in tqdm(coordinates, desc=f"{getattr(net, 'name', 'net')} landscape",
                                 leave=False):
            for name, parameter in net.named_parameters():
                shifted = origin[name].clone()
                for c, direction in zip(coefficients, directions, strict=True):
                    shifted.add_(direction[name], alpha=c)
                parameter.copy_(shifted)
            results.append(evaluate(net, images, labels, batch_size, precision))
    finally:
        for name, parameter in net.named_parameters():
            parameter.copy_(origin[name])
    return results


def grid(points: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, points)


def landscape_tables(trained, images, labels, budget) -> dict[str, pd.DataFrame]:
    """One trained net's 1D curve ("1d": 2 x points - 1 values of α) and 2D surface ("2d":
    points x points), with directions drawn from seed 0 (δ first, then η)."""
    net = trained.load_net()
    generator = torch.Generator().manual_seed(0)
    delta = filter_normalized_direction(net, generator)
    eta = filter_normalized_direction(net, generator)
    about = {"net": trained.net, "depth": trained.depth, "shortcut": trained.family}
    alphas = grid(2 * budget.landscape_points - 1)
    line = loss_surface(net, [delta], [(a,) for a in alphas], images, labels,
                        budget.eval_batch_size, budget.precision)
    curve = pd.DataFrame({"alpha": alphas, "loss": [v[0] for v in line],
                          "error": [v[1] for v in line]}).assign(**about)
    axis = grid(budget.landscape_points)
    points = [(a, b) for a in axis for b in axis]
    plane = loss_surface(net, [delta, eta], points, images, labels, budget.eval_batch_size,
                         budget.precision)
    surface = pd.DataFrame({"alpha": [p[0] for p in points], "beta": [p[1] for p in points],
                            "loss": [v[0] for v in plane]}).assign(**about)
    return {"1d": curve, "2d": surface}


def plot_curves(curves: pd.DataFrame, title: str):
    """1D: training loss along δ, one panel per depth, plain (red) against residual (blue)."""
    depths = sorted(curves["depth"].unique())
    figure, axes = plt.subplots(1, len(depths), figsize=(4.5 * len(depths), 3.8), squeeze=False)
    for axis, depth in zip(axes[0], depths, strict=True):
        for net, rows in curves[curves["depth"] == depth].groupby("net", sort=False):
            colour = "tab:red" if rows["shortcut"].iloc[0] == PLAIN else "tab:blue"
            axis.plot(rows["alpha"], rows["loss"], color=colour, label=net)
        axis.set_yscale("log")
        axis.set_xlabel("α (filter-normalized direction)")
        axis.set_ylabel("training loss")
        axis.set_title(f"depth {depth}")
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def contour_levels(surfaces: pd.DataFrame, count: int = 25) -> np.ndarray:
    """Levels shared by every panel: log-spaced from the lowest positive to the highest finite
    loss found, so that a plain and a residual net are drawn on the same scale."""
    losses = surfaces["loss"][np.isfinite(surfaces["loss"]) & (surfaces["loss"] > 0)]
    return np.geomspace(losses.min(), losses.max(), count)


def plot_contours(surfaces: pd.DataFrame, title: str):
    """2D: contours of the training loss over (α, β), a row per depth, plain (left) and
    ResNet (right), the same levels in every panel."""
    depths = sorted(surfaces["depth"].unique())
    families = [PLAIN, "A"]
    figure, axes = plt.subplots(len(depths), 2, figsize=(10, 4.3 * len(depths)), squeeze=False)
    levels = contour_levels(surfaces)
    for row, depth in enumerate(depths):
        for column, shortcut in enumerate(families):
            axis = axes[row][column]
            rows = surfaces[(surfaces["depth"] == depth) & (surfaces["shortcut"] == shortcut)]
            if rows.empty:
                axis.set_axis_off()
                continue
            table = rows.pivot(index="beta", columns="alpha", values="loss")
            contours = axis.contour(table.columns, table.index, table.to_numpy(),
                                    levels=levels, cmap="viridis",
                                    norm=LogNorm(vmin=levels[0], vmax=levels[-1]))
            axis.clabel(contours, fontsize=6, fmt="%.2g")
            axis.set_title(rows["net"].iloc[0])
            axis.set_xlabel("α")
            axis.set_ylabel("β")
            axis.set_aspect("equal")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def findings(curves: pd.DataFrame, surfaces: pd.DataFrame) -> list[str]:
    lines = []
    for net, rows in curves.groupby("net", sort=False):
        centre = rows.loc[rows["alpha"].abs().idxmin()]
        ends = rows[rows["alpha"].abs() == 1.0]["loss"]
        surface = surfaces[surfaces["net"] == net]
        plane = surface["loss"]
        lines.append(
            f"- {net}: training loss {centre['loss']:.3f} ({centre['error']:.1f} % error) at "
            f"the trained weights, {ends.min():.3g}-{ends.max():.3g} at α = ±1 along δ; over the "
            f"2D grid {plane.min():.3g} to {plane.max():.3g} (max / min "
            f"{plane.max() / plane.min():.3g}); {_minima_note(surface)}.")
    return lines


def local_minima(rows: pd.DataFrame) -> list[tuple[float, float, float]]:
    """(α, β, loss) of each point of one net's 2D grid whose loss is below that of every
    neighbour (up to 8): one for a bowl, several for a surface with many local minima (Li et
    al.'s chaotic plain-56), lowest first."""
    table = rows.pivot(index="beta", columns="alpha", values="loss")
    loss = table.to_numpy()
    padded = np.pad(loss, 1, constant_values=np.inf)
    height, width = loss.shape
    lowest = np.ones_like(loss, dtype=bool)
    for down in (-1, 0, 1):
        for right in (-1, 0, 1):
            if down or right:
                lowest &= loss < padded[1 + down:1 + down + height, 1 + right:1 + right + width]
    return sorted(((float(table.columns[j]), float(table.index[i]), float(loss[i, j]))
                   for i, j in np.argwhere(lowest)), key=lambda minimum: minimum[2])


def _minima_note(rows: pd.DataFrame) -> str:
    minima = local_minima(rows)
    where = ", ".join(f"({alpha:.2f}, {beta:.2f}) at {loss:.3g}"
                      for alpha, beta, loss in minima[:6])
    more = ", ..." if len(minima) > 6 else ""
    return (f"{len(minima)} local minim{'um' if len(minima) == 1 else 'a'} on the grid "
            f"(points below all their neighbours, lowest first; chance is a loss of ln 10 = 2.3): "
            f"{where}{more}")


def run(context) -> dict:
    budget = context.budget
    runs = context.finished
    if not runs:
        raise SystemExit("no finished runs to draw: train them first (make reproduce-fig6)")
    images, labels, words = dataset(context.config, "train", budget.landscape_images)
    tables = measured_per_net(context, runs, lambda trained: landscape_tables(
        trained, images, labels, budget))
    curves, surfaces = tables["1d"], tables["2d"]
    written = {"curves": save_csv(curves, context.out_dir / "landscape_1d.csv"),
               "surfaces": save_csv(surfaces, context.out_dir / "landscape_2d.csv")}
    figure = plot_curves(curves, context.title("Training loss along a filter-normalized "
                                               "direction"))
    written["png_1d"], written["pdf_1d"] = save_figure(figure, context.out_dir / "landscape_1d")
    figure = plot_contours(surfaces, context.title("Training loss around the trained weights"))
    written["png_2d"], written["pdf_2d"] = save_figure(figure, context.out_dir / "landscape_2d")
    points = budget.landscape_points
    measured = [
        "- " + " ".join(__doc__.strip().splitlines()[2:7]),
        f"- On {words}; α and β over [-1, 1]: "
        f"{2 * points - 1} points in 1D, {points} x {points} in 2D. Contour levels are shared "
        "by all panels (log-spaced over the losses found).",
        *precision_note({run.net: run.load_net() for run in runs}, images, labels, budget),
        *per_net_note(context, runs),
    ]
    written["readme"] = write_readme(
        context, context.title("Loss landscape"), runs, measured,
        findings(curves, surfaces) + READING + (SHORT_RUNS if context.short_schedule else []),
        ["landscape_1d.png", "landscape_2d.png"])
    return written


READING = [
    "",
    "- Li et al. found ResNet-56's surface smooth and nearly convex around its minimum and the "
    "56-layer net without skip connections chaotic, with many local minima; their nets were "
    "converged (test errors near 6 % and 13 %).",
]
#: Said of nets short of the paper's schedule.
SHORT_RUNS = [
    "- Nets trained for the cpu profile's 1,200 iterations are far from converged: the trained "
    "weights are not a minimum yet, so the lowest loss need not be at the centre, and the "
    "surface shows the region that SGD was crossing rather than the basin it would settle in. "
    "What the comparison can still show is how much rougher and steeper the plain net's "
    "neighbourhood is than its residual twin's at the same scale.",
]
