"""Figure 7: the standard deviation of each 3x3 layer's response on the test set, from the final
weights of plain nets and ResNets, in layer order and sorted by magnitude; the ResNets'
responses are generally smaller. The response is the layer's BN output, before the addition
and the ReLU.

The grid is ``conf/experiment/fig7.yaml``; this is the rest of the recipe.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import nn

from resnet_repro.analysis.collect import series_labels
from resnet_repro.analysis.context import Context
from resnet_repro.analysis.nets import dataset
from resnet_repro.analysis.plots import colour_of, plt
from resnet_repro.analysis.report import heading, write_results
from resnet_repro.runs import PLAIN, Run

#: Decimals kept of a response std: CPUs that sum fp32 in another order move it by ~4e-9, and
#: unrounded values would rewrite the committed results at each redraw on another machine.
DIGITS = 4


def response_layers(net: nn.Module) -> list[nn.BatchNorm2d]:
    """The BN after each 3x3 conv, input to output (projection shortcuts' BNs left out)."""
    return [module for name, module in net.named_modules()
            if isinstance(module, nn.BatchNorm2d) and "shortcut" not in name]


@torch.inference_mode()
def layer_response_std(net: nn.Module, images: torch.Tensor, batch_size: int = 250) -> list[float]:
    """Standard deviation of every response layer's output over all of ``images``."""
    layers = response_layers(net)
    sums = torch.zeros(len(layers), 2, dtype=torch.float64)
    counts = [0] * len(layers)

    def recorder(index: int):
        def record(module, inputs, output):
            output = output.double()
            sums[index, 0] += output.sum()
            sums[index, 1] += output.square().sum()
            counts[index] += output.numel()
        return record

    handles = [layer.register_forward_hook(recorder(i)) for i, layer in enumerate(layers)]
    try:
        for batch in images.split(batch_size):
            net(batch)
    finally:
        for handle in handles:
            handle.remove()
    count = torch.tensor(counts, dtype=torch.float64)
    mean = sums[:, 0] / count
    return (sums[:, 1] / count - mean.square()).clamp(min=0).sqrt().tolist()


def responses(runs: list[Run], test_images: torch.Tensor) -> pd.DataFrame:
    """One row per (run, layer) of the finished runs: series (``collect.series_labels``), net,
    group, depth, shortcut, seed, layer (1 = first), std."""
    rows = []
    for run in (run for run in runs if run.done):
        for layer, std in enumerate(layer_response_std(run.load_net(), test_images), start=1):
            rows.append({"net": run.net, "group": run.group, "depth": run.depth,
                         "shortcut": run.family, "seed": run.seed, "layer": layer,
                         "std": round(std, DIGITS)})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame.insert(0, "series", series_labels(frame))
    return frame


def plot_layer_responses(responses: pd.DataFrame, title: str):
    """Figure 7's layout: each net's layer response std in layer order (top) and sorted by
    magnitude (bottom); plain nets dashed, ResNets solid; mean over seeds."""
    figure, (ordered, sorted_axis) = plt.subplots(2, 1, figsize=(8, 7))
    mean = responses.groupby(["shortcut", "depth", "series", "layer"])["std"].mean()
    for (shortcut, depth, net), layers in mean.groupby(level=["shortcut", "depth", "series"]):
        style = {"color": colour_of(int(depth)), "label": net, "linewidth": 1.2,
                 "linestyle": "--" if shortcut == PLAIN else "-"}
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


def findings(responses: pd.DataFrame) -> list[str]:
    """Mean over layers of each net's response std, and each ResNet against its plain twin."""
    means = responses.groupby(["shortcut", "depth"])["std"].mean()
    lines = ["- Mean response std over layers: " + ", ".join(
        f"{'plain' if s == PLAIN else 'resnet'}-{d} {v:.3f}" for (s, d), v in means.items())
        + "."]
    for (_, depth), value in means.drop(PLAIN, level="shortcut", errors="ignore").items():
        if (PLAIN, depth) in means.index:
            plain = means[(PLAIN, depth)]
            verdict = "smaller" if value < plain else "not smaller"
            lines.append(f"- depth {depth}: the ResNet's responses are {verdict} than the plain "
                         f"net's ({value:.3f} against {plain:.3f}).")
    return lines


def write(context: Context, table: pd.DataFrame) -> dict[str, Path]:
    """The results folder from the measured responses."""
    figure = plot_layer_responses(table, f"{heading(context)}: std of layer responses "
                                  "(test set)")
    sections = ["## Layer responses (Figure 7)", "", *findings(table), ""]
    return write_results(context, figure, sections=sections, frames={"responses": table})


def run(context: Context) -> dict[str, Path]:
    return write(context, responses(context.runs, dataset(context.config, "test")[0]))
