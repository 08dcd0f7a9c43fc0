"""Gradient diagnostics: do the gradients of deep plain nets vanish or explode?

For a net and fixed batches of training images (unaugmented, BN in training mode as in a
training step), the gradient of the mean cross-entropy loss: per conv layer its norm
‖∂L/∂W‖ and ‖∂L/∂W‖ / ‖W‖, and per block the norm of the gradient at the block's input
‖∂L/∂x‖ and its root mean square over the input's elements (the norm / sqrt(elements)), each
averaged over the batches. The trend through the depth is judged on the RMS: the first block's
input (16 x 32 x 32 per image) has 4 times the elements of the last's (64 x 8 x 8), which alone
makes its norm twice as large. Nets at initialization (several seeds, the same
initialization a run of that seed starts from) and at the final weights of finished runs.
"""

from __future__ import annotations

import copy

import pandas as pd
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn

from resnet_repro.analysis.nets import dataset, save_csv, write_readme
from resnet_repro.analysis.plots import plt, save_figure
from resnet_repro.runs import PLAIN, family

#: A block's input gradient (RMS) this many times smaller at the first block than at the last
#: counts as vanishing towards the input; this many times larger, as exploding.
TREND_FACTOR = 10.0


def conv_layers(net: nn.Module) -> list[nn.Conv2d]:
    """Every conv layer on the main path, input to output (projection shortcuts left out)."""
    return [module for name, module in net.named_modules()
            if isinstance(module, nn.Conv2d) and "shortcut" not in name]


def gradient_norms(net: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]
                   ) -> pd.DataFrame:
    """One row per conv layer (kind ``conv``: layer, grad_norm, weight_norm, relative) and per
    block (kind ``block``: layer, grad_norm of the block's input), means over ``batches``. The
    net is copied (a training-mode pass moves BN's running statistics) and left as it was."""
    net = copy.deepcopy(net).train()
    convs, blocks = conv_layers(net), list(net.blocks())
    inputs: list[torch.Tensor] = []

    def keep_input(module, args):
        args[0].retain_grad()
        inputs.append(args[0])

    handles = [block.register_forward_pre_hook(keep_input) for block in blocks]
    sums = torch.zeros(len(convs) + 2 * len(blocks), dtype=torch.float64)
    try:
        for images, labels in batches:
            net.zero_grad(set_to_none=True)
            inputs.clear()
            F.cross_entropy(net(images.requires_grad_(False)), labels).backward()
            norms = [conv.weight.grad.norm() for conv in convs]
            norms += [tensor.grad.norm() for tensor in inputs]
            norms += [tensor.grad.norm() / tensor.numel() ** 0.5 for tensor in inputs]
            sums += torch.stack(norms).double()
    finally:
        for handle in handles:
            handle.remove()
    means = (sums / len(batches)).tolist()
    weights = [conv.weight.detach().norm().item() for conv in convs]
    rows = [{"kind": "conv", "layer": i + 1, "grad_norm": g, "weight_norm": w,
             "relative": g / w} for i, (g, w) in enumerate(zip(means, weights, strict=False))]
    block_norms, block_rms = means[len(convs):len(convs) + len(blocks)], \
        means[len(convs) + len(blocks):]
    rows += [{"kind": "block", "layer": i + 1, "grad_norm": g, "rms": r, "weight_norm": None,
              "relative": None} for i, (g, r) in enumerate(zip(block_norms, block_rms,
                                                                  strict=True))]
    return pd.DataFrame(rows)


def trend(norms: pd.Series) -> tuple[float, str]:
    """(first / last, verdict) for norms in layer order: vanishing towards the input where the
    first is ``TREND_FACTOR`` times smaller than the last, exploding where that much larger."""
    ratio = float(norms.iloc[0] / norms.iloc[-1])
    if ratio < 1 / TREND_FACTOR:
        return ratio, "vanish towards the input"
    if ratio > TREND_FACTOR:
        return ratio, "explode towards the input"
    return ratio, "stay level"


def findings(table: pd.DataFrame) -> list[str]:
    """Per net and state: the block-input gradient at the first and last block and its trend,
    the conv weight gradients at the first and last layer."""
    lines = []
    keys = ["state", "shortcut", "depth", "net"]
    means = table.groupby([*keys, "kind", "layer"])[["grad_norm", "rms", "relative"]].mean()
    for (state, _, _, net), rows in means.groupby(level=keys, sort=True):
        blocks = rows.xs("block", level="kind")
        convs = rows.xs("conv", level="kind")
        ratio, verdict = trend(blocks["rms"])
        norm_ratio = blocks["grad_norm"].iloc[0] / blocks["grad_norm"].iloc[-1]
        seeds = table[(table["net"] == net) & (table["state"] == state)]["seed"].nunique()
        lines.append(
            f"- {net} at {state} ({seeds} seed{'s' if seeds > 1 else ''}): RMS of ∂L/∂x at the "
            f"first block {blocks['rms'].iloc[0]:.3g}, at the last {blocks['rms'].iloc[-1]:.3g} "
            f"(ratio {ratio:.3g}; of the norms {norm_ratio:.3g}): the gradients {verdict}. "
            f"‖∂L/∂W‖ of the first conv "
            f"{convs['grad_norm'].iloc[0]:.3g}, of the last {convs['grad_norm'].iloc[-1]:.3g}; "
            f"‖∂L/∂W‖/‖W‖ {convs['relative'].iloc[0]:.3g} and {convs['relative'].iloc[-1]:.3g}.")
    return lines


FAMILY_COLOURS = {PLAIN: "tab:red", "A": "tab:blue"}
STATE_STYLES = {"initialization": "--", "final weights": "-"}
PANEL_ROWS = (("conv", "grad_norm", "‖∂L/∂W‖ per conv layer"),
              ("conv", "relative", "‖∂L/∂W‖ / ‖W‖"),
              ("block", "rms", "RMS of ∂L/∂x at each block's input"))


def plot_gradients(table: pd.DataFrame, title: str):
    """Gradient norms against layer index on a log scale: one column per depth, one row per
    measure; plain (red) against residual (blue), at initialization (dashed, mean over seeds)
    and at the final weights (solid)."""
    depths = sorted(table["depth"].unique())
    figure, axes = plt.subplots(len(PANEL_ROWS), len(depths), squeeze=False,
                                figsize=(4.5 * len(depths), 3.2 * len(PANEL_ROWS)))
    keys = ["depth", "kind", "state", "shortcut", "net", "layer"]
    means = table.groupby(keys)[[measure for _, measure, _ in PANEL_ROWS]].mean()
    for column, depth in enumerate(depths):
        for row, (kind, measure, label) in enumerate(PANEL_ROWS):
            axis = axes[row][column]
            for (state, shortcut, net), points in means.loc[(depth, kind)].groupby(
                    level=["state", "shortcut", "net"]):
                values = points[measure]
                axis.plot(values.index.get_level_values("layer"), values.to_numpy(),
                          color=FAMILY_COLOURS.get(shortcut, "tab:green"),
                          linestyle=STATE_STYLES[state], label=f"{net}, {state}")
            axis.set_yscale("log")
            axis.set_xlabel("layer index" if kind == "conv" else "block index")
            axis.set_ylabel(label)
            axis.grid(alpha=0.3, which="both")
            if row == 0:
                axis.set_title(f"depth {depth}")
                axis.legend(fontsize="x-small")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def run(context) -> dict:
    """experiment=gradients: the nets of ``analysis.init_depths`` at initialization (seeds
    0..budget.gradient_seeds-1) and every finished run of the sweep."""
    config, budget = context.config, context.budget
    batch_size = config.data.batch_size
    images, labels, words = dataset(config, "train", budget.gradient_batches * batch_size)
    batches = list(zip(images.split(batch_size), labels.split(batch_size), strict=True))
    frames = []
    for depth in config.analysis.init_depths:
        for shortcut in (None, "A"):
            for seed in range(budget.gradient_seeds):
                torch.manual_seed(seed)  # as a run of this seed initializes its net
                net = instantiate(config.model, depth=depth, shortcut=shortcut)
                frames.append(gradient_norms(net, batches).assign(
                    state="initialization", net=net.name, depth=depth,
                    shortcut=family(shortcut), seed=seed))
    runs = context.finished
    for trained in runs:
        frames.append(gradient_norms(trained.load_net(), batches).assign(
            state="final weights", net=trained.net, depth=trained.depth,
            shortcut=trained.family, seed=trained.seed))
    table = pd.concat(frames, ignore_index=True)
    written = {"csv": save_csv(table, context.out_dir / "gradients.csv")}
    figure = plot_gradients(table, context.title("Gradient norms by layer"))
    written["png"], written["pdf"] = save_figure(figure, context.out_dir / "gradients")
    measured = [
        "- " + " ".join(__doc__.strip().splitlines()[2:]),
        f"- Batches: {len(batches)} x {batch_size} of {words}. "
        f"Nets at initialization: depths {', '.join(map(str, config.analysis.init_depths))}, "
        f"plain and ResNet, seeds 0-{budget.gradient_seeds - 1}. Final weights: the runs listed "
        "above.",
        f"- Rule: the gradients vanish (explode) towards the input where the RMS of ∂L/∂x at "
        f"the first block is more than {TREND_FACTOR:g} times smaller (larger) than at the last "
        "block; otherwise they stay level.",
    ]
    written["readme"] = write_readme(
        context, context.title("Gradient norms through the depth"), runs, measured,
        findings(table), ["gradients.png"])
    return written
