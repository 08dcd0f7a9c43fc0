"""Figure 7: the standard deviation of each 3x3 layer's response on the test set, from a run's
final weights. The response is the layer's BN output, before the addition and the ReLU."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
from torch import nn

from resnet_repro.analysis.collect import series_labels
from resnet_repro.runs import RunFolder


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


def responses(directories: list[Path], test_images: torch.Tensor) -> pd.DataFrame:
    """One row per (run, layer) of the finished runs: series (``collect.series_labels``), net,
    group, depth, shortcut, seed, layer (1 = first), std."""
    rows = []
    for directory in directories:
        folder = RunFolder(directory)
        record = folder.read_record()
        if record.get("status") != "done":
            continue
        net = folder.load_net()
        for layer, std in enumerate(layer_response_std(net, test_images), start=1):
            rows.append({"net": record["net"], "group": record.get("group"),
                         "depth": record["model"]["depth"],
                         "shortcut": record["model"]["shortcut"] or "none",
                         "seed": record["seed"], "layer": layer, "std": std})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame.insert(0, "series", series_labels(frame))
    return frame
