"""The lesion study of Veit, Wilber, Belongie (NeurIPS 2016), "Residual networks behave like
ensembles of relatively shallow networks", on the suite's own trained nets.

Blocks are deleted from a trained net, BN in evaluation mode with its stored statistics (no
recalibration), and the test error measured: each single block in turn (the residual branch
removed, the shortcut kept, so downsampling blocks can be deleted too; in a plain net, the
layer pair bypassed by option A's mapping), and k blocks at random, many draws per k, from all
blocks and from the blocks that keep the shape (downsampling blocks excluded).
"""

from __future__ import annotations

import pandas as pd
import torch
from tqdm.auto import tqdm

from resnet_repro.analysis.nets import (
    FP32,
    dataset,
    in_precision,
    layout,
    measured_per_net,
    per_net_note,
    precision_note,
    save_csv,
    write_readme,
)
from resnet_repro.analysis.plots import plt, save_figure
from resnet_repro.models.surgery import block_inputs, forward_deleting, is_downsampling
from resnet_repro.runs import PLAIN

#: Numbers of deleted blocks, as in Veit et al.'s Figure 5 (up to the net's own count).
KS = (1, 2, 3, 5, 7, 10, 13, 15, 20)
#: Veit et al., pre-activation ResNet-110 on CIFAR-10 (test error 6.03 %): median test error
#: (%) over random deletions of k blocks, downsampling blocks excluded.
VEIT_MEDIANS = {1: 6.5, 2: 7.0, 3: 7.7, 5: 9.4, 7: 11.2, 10: 19.0, 13: 29.6, 15: 33.2, 20: 57.7}
POOLS = ("shape-keeping blocks", "all blocks")


def lesions(net, draws: int, generator: torch.Generator) -> list[dict]:
    """The deletions to measure: none (the intact net), each single block, and ``draws``
    random sets of k blocks per k and pool (a pool too small for k is skipped)."""
    blocks = net.blocks()
    keeping = [i for i, block in enumerate(blocks) if not is_downsampling(block)]
    cases = [{"kind": "intact", "deleted": ()}]
    cases += [{"kind": "single", "deleted": (i,), "block": i + 1,
               "downsampling": is_downsampling(blocks[i])} for i in range(len(blocks))]
    for pool_name, pool in zip(POOLS, (keeping, list(range(len(blocks)))), strict=True):
        for k in (k for k in KS if k <= len(pool)):
            for draw in range(draws):
                chosen = torch.randperm(len(pool), generator=generator)[:k]
                cases.append({"kind": "random", "pool": pool_name, "k": k, "draw": draw,
                              "deleted": tuple(sorted(pool[i] for i in chosen.tolist()))})
    return cases


@torch.inference_mode()
def lesion_errors(net, images: torch.Tensor, labels: torch.Tensor, cases: list[dict],
                  batch_size: int = 250, precision: str = FP32) -> list[float]:
    """Test error (%) of ``net`` under each case's deletions, batch by batch, in ``precision``:
    the blocks before the first deleted one run once per batch (``block_inputs``)."""
    wrong = torch.zeros(len(cases), dtype=torch.long)
    batches = list(zip(images.split(batch_size), labels.split(batch_size), strict=True))
    with in_precision(net, precision):
        for batch, truth in tqdm(batches, desc=f"{getattr(net, 'name', 'net')} lesions",
                                 leave=False):
            inputs = block_inputs(net, layout(batch, precision))
            for index, case in enumerate(cases):
                start = min(case["deleted"], default=0)
                logits = forward_deleting(net, inputs[start], set(case["deleted"]), start)
                wrong[index] += (logits.argmax(dim=1) != truth).sum()
    return (100.0 * wrong / len(labels)).tolist()


def lesion_table(trained, images, labels, budget) -> pd.DataFrame:
    """Every case of ``lesions`` for one trained net (singles only for a plain net), with its
    test error."""
    net = trained.load_net()
    generator = torch.Generator().manual_seed(0)
    draws = budget.lesion_draws if trained.family != PLAIN else 0  # plain: singles only
    cases = lesions(net, draws, generator)
    errors = lesion_errors(net, images, labels, cases, budget.eval_batch_size, budget.precision)
    frame = pd.DataFrame(cases).assign(test_error=errors, net=trained.net, depth=trained.depth,
                                       shortcut=trained.family)
    frame["deleted"] = [" ".join(str(i + 1) for i in d) for d in frame["deleted"]]
    return frame


def random_medians(table: pd.DataFrame) -> pd.DataFrame:
    """Median, quartiles and extremes of the test error over the draws, per net, pool and k."""
    draws = table[table["kind"] == "random"].groupby(["net", "depth", "pool", "k"])["test_error"]
    return pd.DataFrame({"median": draws.median(), "q25": draws.quantile(0.25),
                         "q75": draws.quantile(0.75), "min": draws.min(), "max": draws.max(),
                         "draws": draws.size()}).reset_index()


def plot_lesions(table: pd.DataFrame, medians: pd.DataFrame, title: str):
    """Left: test error with each single block deleted (ResNets solid, plain nets dashed, the
    intact net's error as a dotted line). Right: median test error (quartiles shaded) against
    the number of blocks deleted at random, with Veit et al.'s medians for comparison."""
    figure, (single, random) = plt.subplots(1, 2, figsize=(13, 4.8))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    nets = table.drop_duplicates("net").sort_values(["shortcut", "depth"])["net"].tolist()
    for colour, net in zip(palette, nets, strict=False):
        rows = table[table["net"] == net]
        singles = rows[rows["kind"] == "single"]
        style = "--" if rows["shortcut"].iloc[0] == PLAIN else "-"
        single.plot(singles["block"], singles["test_error"], style, color=colour, marker=".",
                    label=net)
        single.axhline(rows[rows["kind"] == "intact"]["test_error"].iloc[0], color=colour,
                       linestyle=":", linewidth=1)
        for pool, dash in zip(POOLS, ("-", "--"), strict=True):
            points = medians[(medians["net"] == net) & (medians["pool"] == pool)]
            if points.empty:
                continue
            random.plot(points["k"], points["median"], dash, color=colour, marker="o",
                        label=f"{net}, {pool}")
            random.fill_between(points["k"], points["q25"], points["q75"], color=colour,
                                alpha=0.15, linewidth=0)
    random.plot(list(VEIT_MEDIANS), list(VEIT_MEDIANS.values()), "k^:", label=(
        "Veit et al., pre-act. ResNet-110, shape-keeping blocks"))
    single.set_xlabel("deleted block (index, input to output)")
    random.set_xlabel("number of blocks deleted at random")
    for axis in (single, random):
        axis.set_ylabel("test error (%)")
        axis.set_ylim(0, 100)
        axis.grid(alpha=0.3)
        axis.legend(fontsize="x-small")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def findings(table: pd.DataFrame, medians: pd.DataFrame) -> list[str]:
    lines = []
    for net, rows in table.groupby("net", sort=False):
        intact = rows[rows["kind"] == "intact"]["test_error"].iloc[0]
        singles = rows[rows["kind"] == "single"]
        keeping = singles[~singles["downsampling"].astype(bool)]
        down = singles[singles["downsampling"].astype(bool)]
        first = singles.iloc[0]["test_error"]
        lines.append(
            f"- {net} (intact: {intact:.1f} %): one block deleted, the shape-keeping blocks give "
            f"{keeping['test_error'].min():.1f}-{keeping['test_error'].max():.1f} % (median "
            f"{keeping['test_error'].median():.1f} %), the first block {first:.1f} %, the "
            f"downsampling blocks {', '.join(f'{e:.1f}' for e in down['test_error'])} %.")
        kept = medians[(medians["net"] == net) & (medians["pool"] == POOLS[0])]
        if not kept.empty:
            lines.append("  Random deletions of shape-keeping blocks, median test error by k: "
                         + ", ".join(f"k={int(k)} {m:.1f} %" for k, m in
                                     zip(kept["k"], kept["median"], strict=True)) + ".")
    return lines


COMPARISON = [
    "",
    "Beside Veit et al. (their pre-activation ResNet-110, test error 6.03 %): most single "
    "deletions gave 6.0-7.2 %, the first block 42 %, the downsampling blocks about 12 %; the "
    "median over random deletions of k = 1, 2, 3, 5, 7, 10, 13, 15, 20 shape-keeping blocks "
    "was " + ", ".join(f"{m}" for m in VEIT_MEDIANS.values()) + " % (black triangles in the "
    "figure).",
    "",
    "- Ours are the paper's post-activation nets: a ReLU follows every addition, so the net "
    "does not unravel exactly into a sum over paths as a pre-activation net (x + F(x), nothing "
    "on the sum) does, and deleting a block also changes what the later blocks' ReLUs and BN "
    "statistics see. Expect deletions to hurt somewhat more than in Veit et al.'s nets; the "
    "contrast that matters is with the plain nets, where no path survives a deleted pair.",
]
#: Said of nets short of the paper's schedule.
SHORT_RUNS = [
    "- Where the nets are far from converged (the cpu profile's 1,200 iterations, test errors "
    "around 30 %), the intact error is already high and each block has had little training to "
    "specialize: the curves show how the damage grows with k and how residual and plain nets "
    "differ, not the absolute numbers of a converged net.",
]


def run(context) -> dict:
    budget = context.budget
    runs = context.finished
    if not runs:
        raise SystemExit("no finished runs to lesion: train them first (make reproduce-fig6)")
    images, labels, words = dataset(context.config, "test", budget.lesion_images)
    table = measured_per_net(context, runs, lambda trained: {
        "lesion": lesion_table(trained, images, labels, budget)})["lesion"]
    medians = random_medians(table)
    written = {"csv": save_csv(table, context.out_dir / "lesion.csv"),
               "medians": save_csv(medians.round(3), context.out_dir / "lesion_random.csv")}
    figure = plot_lesions(table, medians, context.title("Lesion study"))
    written["png"], written["pdf"] = save_figure(figure, context.out_dir / "lesion")
    measured = [
        "- " + " ".join(__doc__.strip().splitlines()[3:8]),
        f"- On {words}; {budget.lesion_draws} random "
        "draws per k and pool (a fixed seed), for the ResNets; single deletions for every net.",
        *precision_note({run.net: run.load_net() for run in runs}, images, labels, budget),
        *per_net_note(context, runs),
    ]
    written["readme"] = write_readme(
        context, context.title("Lesion study: deleting blocks of trained nets"), runs,
        measured, findings(table, medians) + COMPARISON
        + (SHORT_RUNS if context.short_schedule else []), ["lesion.png"])
    return written
