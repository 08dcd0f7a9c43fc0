"""The loss landscape around trained weights, as Li, Xu, Taylor, Studer, Goldstein (NeurIPS
2018, "Visualizing the Loss Landscape of Neural Nets") draw it: the training loss at
θ + α δ (1D) and θ + α δ + β η (2D) for random directions δ, η that are filter-normalized:
Gaussian, then each output filter's direction scaled to the norm of that filter's weights;
BN parameters and biases get no direction (zero). A fixed seed draws the directions; BN in
evaluation mode with its stored statistics; the training images without augmentation.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
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
    run_labels,
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


def _at_points(net: nn.Module, directions: list[dict], coordinates: list[tuple], what: str):
    """For each tuple of coefficients c in ``coordinates``, ``net`` moved to θ + Σ cᵢ dᵢ
    (yielded once there, evaluation mode); θ restored afterwards, also on an error."""
    net.eval()
    origin = {name: p.detach().clone() for name, p in net.named_parameters()}
    try:
        for coefficients in tqdm(coordinates, desc=f"{getattr(net, 'name', 'net')} {what}",
                                 leave=False):
            for name, parameter in net.named_parameters():
                shifted = origin[name].clone()
                for c, direction in zip(coefficients, directions, strict=True):
                    shifted.add_(direction[name], alpha=c)
                parameter.copy_(shifted)
            yield
    finally:
        for name, parameter in net.named_parameters():
            parameter.copy_(origin[name])


@torch.inference_mode()
def loss_surface(net: nn.Module, directions: list[dict], coordinates: list[tuple],
                 images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 precision: str = FP32) -> list[tuple[float, float]]:
    """(loss, error %) at θ + Σ cᵢ dᵢ for each tuple of coefficients c in ``coordinates``,
    evaluated in ``precision``; the net is restored to θ afterwards."""
    return [evaluate(net, images, labels, batch_size, precision)
            for _ in _at_points(net, directions, coordinates, "landscape")]


@torch.inference_mode()
def image_losses(net: nn.Module, directions: list[dict], coordinates: list[tuple],
                 images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> np.ndarray:
    """The fp32 cross-entropy of every image (columns) at each point (rows): what a
    bootstrap over images needs to tell a dip from the evaluation's noise."""
    losses = []
    for _ in _at_points(net, directions, coordinates, "minima check"):
        losses.append(torch.cat([F.cross_entropy(net(batch), truth, reduction="none")
                                 for batch, truth in zip(images.split(batch_size),
                                                         labels.split(batch_size),
                                                         strict=True)]).numpy())
    return np.stack(losses)


def grid(points: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, points)


def landscape_tables(trained, images, labels, budget) -> dict[str, pd.DataFrame]:
    """One trained net's 1D curve ("1d": 2 x points - 1 values of α along the first pair's δ),
    its 2D surfaces ("2d": points x points, one per direction pair) and the interior minima of
    each surface checked against the evaluation's noise ("minima": ``checked_minima``). The
    directions come from seed 0, δ then η of each pair in turn."""
    net = trained.load_net()
    generator = torch.Generator().manual_seed(0)
    pairs = [[filter_normalized_direction(net, generator) for _ in range(2)]
             for _ in range(budget.landscape_pairs)]
    about = {"net": trained.net, "depth": trained.depth, "shortcut": trained.family}
    alphas = grid(2 * budget.landscape_points - 1)
    line = loss_surface(net, pairs[0][:1], [(a,) for a in alphas], images, labels,
                        budget.eval_batch_size, budget.precision)
    curve = pd.DataFrame({"alpha": alphas, "loss": [v[0] for v in line],
                          "error": [v[1] for v in line]}).assign(**about)
    axis = grid(budget.landscape_points)
    points = [(a, b) for a in axis for b in axis]
    surfaces, minima = [], []
    for pair, directions in enumerate(pairs):
        plane = loss_surface(net, directions, points, images, labels, budget.eval_batch_size,
                             budget.precision)
        surfaces.append(pd.DataFrame({"pair": pair, "alpha": [p[0] for p in points],
                                      "beta": [p[1] for p in points],
                                      "loss": [v[0] for v in plane]}).assign(**about))
        minima += [{"pair": pair, **row} for row in checked_minima(
            net, directions, surfaces[-1], images, labels, budget.eval_batch_size,
            spacing=float(axis[1] - axis[0]))]
    return {"1d": curve, "2d": pd.concat(surfaces, ignore_index=True),
            "minima": pd.DataFrame(minima, columns=MINIMA_COLUMNS).assign(**about)}


#: A candidate minimum is confirmed where its dip is positive in at least this share of
#: bootstrap resamples of the images (a one-sided 97.5 % bound), on the grid and on a finer
#: local grid.
CONFIDENCE, RESAMPLES = 0.975, 1000
MINIMA_COLUMNS = ["pair", "alpha", "beta", "grid_loss", "loss_fp32", "grid_dip",
                  "grid_confidence", "fine_dip", "fine_confidence", "confirmed"]


def interior_minima(rows: pd.DataFrame) -> list[tuple[float, float, float]]:
    """(α, β, loss) of each interior point of one 2D grid whose loss is below that of all 8
    neighbours, lowest first. An edge point never counts: the grid does not hold its whole
    neighbourhood."""
    table = rows.pivot(index="beta", columns="alpha", values="loss")
    loss = table.to_numpy()
    inside = loss[1:-1, 1:-1]
    height, width = inside.shape
    lowest = np.ones_like(inside, dtype=bool)
    for down in (-1, 0, 1):
        for right in (-1, 0, 1):
            if down or right:
                lowest &= inside < loss[1 + down:1 + down + height, 1 + right:1 + right + width]
    return sorted(((float(table.columns[j + 1]), float(table.index[i + 1]), float(inside[i, j]))
                   for i, j in np.argwhere(lowest)), key=lambda minimum: minimum[2])


def neighbourhood(alpha: float, beta: float, step: float, reach: int
                  ) -> tuple[list[tuple[float, float]], list[int], list[int]]:
    """The points (α + i step, β + j step) for |i|, |j| <= ``reach``, with the indices of the
    inner ones (max(|i|, |j|) < reach) and of the ring around them (= reach)."""
    offsets = [(i, j) for i in range(-reach, reach + 1) for j in range(-reach, reach + 1)]
    points = [(alpha + i * step, beta + j * step) for i, j in offsets]
    inner = [n for n, (i, j) in enumerate(offsets) if max(abs(i), abs(j)) < reach]
    ring = [n for n, (i, j) in enumerate(offsets) if max(abs(i), abs(j)) == reach]
    return points, inner, ring


def dip(losses: np.ndarray, inner: list[int], ring: list[int]) -> tuple[float, float]:
    """How far the lowest ``ring`` point's mean loss lies above the lowest ``inner`` point's,
    and the share of bootstrap resamples of the images (the columns of ``losses``, one row per
    point) in which it is above, the lowest points taken again in each resample."""
    count = losses.shape[1]
    weights = np.random.default_rng(0).multinomial(count, np.full(count, 1 / count),
                                                   size=RESAMPLES)
    means = losses @ weights.T / count  # points x resamples
    observed = losses[ring].mean(axis=1).min() - losses[inner].mean(axis=1).min()
    return float(observed), float((means[ring].min(axis=0) > means[inner].min(axis=0)).mean())


def checked_minima(net: nn.Module, directions: list[dict], surface: pd.DataFrame,
                   images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                   spacing: float) -> list[dict]:
    """Each interior minimum of a surface, checked in fp32 with every image's loss: against
    its 8 neighbours on the grid, and where its dip holds there, on a finer local grid (5 x 5 at
    half the spacing), the lowest of the inner 3 x 3 points against the ring one grid step out.
    Confirmed where both dips are positive in ``CONFIDENCE`` of the bootstrap resamples."""
    rows = []
    for alpha, beta, loss in interior_minima(surface):
        row = {"alpha": alpha, "beta": beta, "grid_loss": loss}
        points, inner, ring = neighbourhood(alpha, beta, spacing, reach=1)
        losses = image_losses(net, directions, points, images, labels, batch_size)
        row["loss_fp32"] = float(losses[inner[0]].mean())
        row["grid_dip"], row["grid_confidence"] = dip(losses, inner, ring)
        if row["grid_confidence"] >= CONFIDENCE:
            points, inner, ring = neighbourhood(alpha, beta, spacing / 2, reach=2)
            losses = image_losses(net, directions, points, images, labels, batch_size)
            row["fine_dip"], row["fine_confidence"] = dip(losses, inner, ring)
        row["confirmed"] = row.get("fine_confidence", 0.0) >= CONFIDENCE
        rows.append(row)
    return rows


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


def plot_contours(surfaces: pd.DataFrame, minima: pd.DataFrame, title: str):
    """2D: contours of the training loss over (α, β), a row per net (plain, then ResNet, by
    depth) and a column per direction pair, the same levels in every panel; each interior
    minimum of the grid marked, a star where the noise check confirmed it, a cross where not."""
    nets = (surfaces.drop_duplicates("net").assign(plain=lambda f: f["shortcut"] == PLAIN)
            .sort_values(["depth", "plain"], ascending=[True, False])["net"].tolist())
    pairs = sorted(surfaces["pair"].unique())
    figure, axes = plt.subplots(len(nets), len(pairs), figsize=(4.6 * len(pairs), 4.3 * len(nets)),
                                squeeze=False)
    levels = contour_levels(surfaces)
    for row, net in enumerate(nets):
        for column, pair in enumerate(pairs):
            axis = axes[row][column]
            rows = surfaces[(surfaces["net"] == net) & (surfaces["pair"] == pair)]
            table = rows.pivot(index="beta", columns="alpha", values="loss")
            contours = axis.contour(table.columns, table.index, table.to_numpy(),
                                    levels=levels, cmap="viridis",
                                    norm=LogNorm(vmin=levels[0], vmax=levels[-1]))
            axis.clabel(contours, fontsize=6, fmt="%.2g")
            found = minima[(minima["net"] == net) & (minima["pair"] == pair)]
            confirmed = found["confirmed"].astype(bool)
            axis.plot(found[confirmed]["alpha"], found[confirmed]["beta"], "r*", markersize=10)
            axis.plot(found[~confirmed]["alpha"], found[~confirmed]["beta"], "kx")
            axis.set_title(f"{net}, direction pair {pair}")
            axis.set_xlabel("α")
            axis.set_ylabel("β")
            axis.set_aspect("equal")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def findings(curves: pd.DataFrame, surfaces: pd.DataFrame, minima: pd.DataFrame) -> list[str]:
    lines = []
    for net, rows in curves.groupby("net", sort=False):
        centre = rows.loc[rows["alpha"].abs().idxmin()]
        ends = rows[rows["alpha"].abs() == 1.0]["loss"]
        plane = surfaces[surfaces["net"] == net]["loss"]
        lines.append(
            f"- {net}: training loss {centre['loss']:.3f} ({centre['error']:.1f} % error) at "
            f"the trained weights, {ends.min():.3g}-{ends.max():.3g} at α = ±1 along the first "
            f"δ; over the 2D grids {plane.min():.3g} to {plane.max():.3g}. "
            + _minima_note(minima[minima["net"] == net]))
    return lines


def _minima_note(found: pd.DataFrame) -> str:
    """Per direction pair: the interior grid minima, and those the noise check confirmed."""
    slices = []
    for pair, rows in found.groupby("pair"):
        confirmed = rows[rows["confirmed"].astype(bool)]
        where = "; ".join(
            f"({r.alpha:.2f}, {r.beta:.2f}) at {r.loss_fp32:.3g}, dip {r.fine_dip:.2g}"
            for r in confirmed.itertuples())
        slices.append(f"pair {pair}: {len(rows)} on the grid, {len(confirmed)} confirmed"
                      + (f" ({where})" if where else ""))
    counts = found[found["confirmed"].astype(bool)].groupby("pair").size()
    return ("Interior minima (below all 8 neighbours), and those confirmed against the "
            "evaluation's noise: " + "; ".join(slices) + ". Confirmed per slice: "
            + ", ".join(str(int(counts.get(pair, 0))) for pair in sorted(found["pair"].unique()))
            + ".")


def run(context) -> dict:
    budget = context.budget
    runs = context.trained("draw")
    names = run_labels(runs)
    images, labels, words = dataset(context.config, "train", budget.landscape_images)
    tables = measured_per_net(context, runs, functools.partial(
        landscape_tables, images=images, labels=labels, budget=budget))
    curves, surfaces, minima = tables["1d"], tables["2d"], tables["minima"]
    written = {"curves": save_csv(curves, context.out_dir / "landscape_1d.csv"),
               "surfaces": save_csv(surfaces, context.out_dir / "landscape_2d.csv"),
               "minima": save_csv(minima, context.out_dir / "landscape_minima.csv")}
    figure = plot_curves(curves, context.title("Training loss along a filter-normalized "
                                               "direction"))
    written["png_1d"], written["pdf_1d"] = save_figure(figure, context.out_dir / "landscape_1d")
    figure = plot_contours(surfaces, minima,
                           context.title("Training loss around the trained weights"))
    written["png_2d"], written["pdf_2d"] = save_figure(figure, context.out_dir / "landscape_2d")
    points = budget.landscape_points
    measured = [
        "- " + " ".join(__doc__.strip().splitlines()[2:7]),
        f"- On {words}; α and β over [-1, 1]: {2 * points - 1} points in 1D (the first pair's "
        f"δ), {points} x {points} in 2D for each of {budget.landscape_pairs} direction pairs. "
        "Contour levels are shared by all panels (log-spaced over the losses found).",
        "- A local minimum counts only where it holds against the evaluation's noise: an "
        "interior grid point below all 8 neighbours, evaluated again in fp32 with each image's "
        "loss, its dip (the lowest neighbour's mean loss minus its own) positive in "
        f"{CONFIDENCE:.1%} of {RESAMPLES:,} bootstrap resamples of the images; then on a finer "
        "local grid (5 x 5 at half the spacing) the lowest of the inner 3 x 3 points below the "
        "ring one grid step out, by the same test. Edge points never count.",
        *precision_note({names[run.name]: run.load_net() for run in runs}, images, labels,
                        budget),
        *per_net_note(context, runs),
    ]
    written["readme"] = write_readme(
        context, context.title("Loss landscape"), runs, measured,
        findings(curves, surfaces, minima) + reading(budget, len(labels))
        + (SHORT_RUNS if context.short_schedule else []),
        ["landscape_1d.png", "landscape_2d.png"])
    return written


def reading(budget, images: int) -> list[str]:
    """Li et al.'s finding, and how far this budget's grid and sample are from theirs."""
    spacing = 2 / (budget.landscape_points - 1)
    return [
        "",
        "- Li et al. found ResNet-56's surface smooth and nearly convex around its minimum and "
        "the 56-layer net without skip connections chaotic, with many local minima; their nets "
        "were converged (test errors near 6 % and 13 %), their grids 51 x 51 (spacing 0.04) on "
        f"all 50,000 training images. Here: {budget.landscape_points} x "
        f"{budget.landscape_points} (spacing {spacing:.2g}, {spacing / 0.04:.2g} times theirs) "
        f"on {images:,} images ({images / 50000:.1%} of theirs): features narrower than a grid "
        "step are not seen, and minima are checked only where the grid shows one.",
    ]


#: Said of nets short of the paper's schedule.
SHORT_RUNS = [
    "- Nets trained for the cpu profile's 1,200 iterations are far from converged: the trained "
    "weights are not a minimum yet, so the lowest loss need not be at the centre, and the "
    "surface shows the region that SGD was crossing rather than the basin it would settle in. "
    "What the comparison can still show is how much rougher and steeper the plain net's "
    "neighbourhood is than its residual twin's at the same scale.",
]
