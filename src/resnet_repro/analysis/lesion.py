"""The lesion study of Veit, Wilber, Belongie (NeurIPS 2016), "Residual networks behave like
ensembles of relatively shallow networks", on the suite's own trained nets.

Blocks are deleted from a trained net, BN in evaluation mode with its stored statistics (no
recalibration), and the test error measured: each single block in turn (the residual branch
removed, the shortcut kept, so downsampling blocks can be deleted too; in a plain net, the
layer pair bypassed by option A's mapping), and, as Veit et al. did, k of the blocks that keep
the shape at random (the downsampling blocks excluded), compared at equal fractions of blocks.
"""

from __future__ import annotations

import functools
import itertools
from math import comb

import numpy as np
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
    run_labels,
    save_csv,
    write_readme,
)
from resnet_repro.analysis.plots import plt, save_figure
from resnet_repro.models.surgery import (
    block_inputs,
    forward_deleting,
    is_downsampling,
    kept_path,
)
from resnet_repro.runs import PLAIN

#: Veit et al.'s net: a pre-activation ResNet-110 on CIFAR-10, test error 6.03 %, 54 blocks of
#: which 52 keep the shape.
VEIT_INTACT, VEIT_BLOCKS = 6.03, 52
#: Its median test error (%) over random deletions of k shape-keeping blocks: Veit et al. 2016
#: (arXiv:1605.06431), Figure 5(a), "deleting k modules", as this project read the plotted
#: points by eye (the paper gives no table: take them to about ±1 point).
VEIT_MEDIANS = {1: 6.5, 2: 7.0, 3: 7.7, 5: 9.4, 7: 11.2, 10: 19.0, 13: 29.6, 15: 33.2, 20: 57.7}
#: Random subsets are drawn until the median's 95 % bootstrap interval is within this many
#: points either side (or the budget's cap of draws is reached), ROUND more per k at a time.
HALF_WIDTH, ROUND, RESAMPLES = 1.0, 32, 2000


def deletion_counts(pool: int) -> list[int]:
    """The numbers k of blocks deleted at random from a pool of ``pool`` shape-keeping blocks:
    every k up to 10 (Veit et al.'s k <= 20 of 52 is at most 38 % of the blocks: k <= 9 of
    ResNet-56's 25), then every fifth, and the whole pool."""
    return [k for k in range(1, pool + 1) if k <= 10 or k % 5 == 0 or k == pool]


def single_cases(net) -> list[dict]:
    """The intact net and each block deleted on its own."""
    return [{"kind": "intact", "deleted": ()}] + [
        {"kind": "single", "deleted": (i,), "block": i + 1, "downsampling": is_downsampling(b)}
        for i, b in enumerate(net.blocks())]


def shape_keeping(net) -> list[int]:
    return [i for i, block in enumerate(net.blocks()) if not is_downsampling(block)]


def new_subsets(pool: list[int], k: int, count: int, generator: torch.Generator,
                taken: set) -> list[tuple]:
    """``count`` k-subsets of ``pool`` drawn at random, distinct from each other and from
    ``taken`` (which they join), fewer where fewer are left."""
    drawn = []
    while len(drawn) < min(count, comb(len(pool), k) - len(taken)):
        chosen = torch.randperm(len(pool), generator=generator)[:k].tolist()
        subset = tuple(sorted(pool[i] for i in chosen))
        if subset not in taken:
            taken.add(subset)
            drawn.append(subset)
    return drawn


def median_interval(errors, resamples: int = RESAMPLES) -> tuple[float, float]:
    """The 95 % percentile bootstrap interval of the median of ``errors`` (a fixed seed)."""
    values = np.asarray(errors, dtype=float)
    picks = np.random.default_rng(0).integers(0, len(values), (resamples, len(values)))
    low, high = np.percentile(np.median(values[picks], axis=1), [2.5, 97.5])
    return float(low), float(high)


def settled(errors, cap: int) -> bool:
    """Whether a k's draws are enough: ``cap`` of them, or a median interval within
    ±``HALF_WIDTH`` points."""
    if len(errors) >= cap:
        return True
    low, high = median_interval(errors)
    median = float(np.median(errors))
    return max(median - low, high - median) <= HALF_WIDTH


def random_deletions(net, measure, cap: int, generator: torch.Generator) -> list[dict]:
    """Deletions of k shape-keeping blocks, each k of ``deletion_counts``, with their errors:
    every k-subset where there are at most ``cap`` (exhaustive: an exact median), else distinct
    random ones, ``ROUND`` per k and round, until ``settled``."""
    pool = shape_keeping(net)
    counts = deletion_counts(len(pool))
    exhaustive = [{"k": k, "deleted": subset, "exhaustive": True} for k in counts
                  if comb(len(pool), k) <= cap for subset in itertools.combinations(pool, k)]
    cases = measure(exhaustive)
    sampling = {k: set() for k in counts if comb(len(pool), k) > cap}
    while sampling:
        cases += measure([{"k": k, "deleted": subset, "exhaustive": False}
                          for k, taken in sampling.items()
                          for subset in new_subsets(pool, k, min(ROUND, cap - len(taken)),
                                                    generator, taken)])
        for k in list(sampling):
            if settled([c["test_error"] for c in cases if c["k"] == k], cap):
                del sampling[k]
    return [{"kind": "random", **case, "fraction": case["k"] / len(pool)} for case in cases]


@torch.inference_mode()
def lesion_errors(net, images: torch.Tensor, labels: torch.Tensor, cases: list[dict],
                  batch_size: int = 250, precision: str = FP32) -> list[float]:
    """Test error (%) of ``net`` under each case's deletions, batch by batch, in ``precision``:
    the blocks before the first deleted one run once per batch (``block_inputs``)."""
    wrong = torch.zeros(len(cases), dtype=torch.long)
    batches = list(zip(images.split(batch_size), labels.split(batch_size), strict=True))
    with in_precision(net, precision):
        for batch, truth in tqdm(batches, desc=f"{getattr(net, 'name', 'net')}: "
                                 f"{len(cases)} lesions", leave=False):
            inputs = block_inputs(net, layout(batch, precision))
            for index, case in enumerate(cases):
                start = min(case["deleted"], default=0)
                logits = forward_deleting(net, inputs[start], set(case["deleted"]), start)
                wrong[index] += (logits.argmax(dim=1) != truth).sum()
    return (100.0 * wrong / len(labels)).tolist()


@torch.inference_mode()
def branch_norm_ratios(net, images: torch.Tensor, batch_size: int = 250,
                       precision: str = FP32) -> list[float]:
    """For each block, ‖F(x)‖ / ‖s(x)‖ over ``images``: the residual branch's output against
    the path that a deletion keeps (the shortcut; in a plain net option A's bypass), each the
    root of its sum of squares over the images. Deleting a block removes F(x): how large it is
    beside what stays says how much the deletion changes."""
    blocks = net.blocks()
    branch, kept = torch.zeros(len(blocks), dtype=torch.float64), torch.zeros(len(blocks),
                                                                             dtype=torch.float64)
    with in_precision(net, precision):
        for batch in images.split(batch_size):
            for i, (block, x) in enumerate(zip(blocks, block_inputs(net, layout(batch, precision)),
                                               strict=True)):
                branch[i] += block.residual(x).double().square().sum()
                kept[i] += kept_path(block)(x).double().square().sum()
    return (branch.sqrt() / kept.sqrt()).tolist()


def lesion_tables(trained, images, labels, budget) -> dict[str, pd.DataFrame]:
    """{"lesion": every case for one trained net with its test error}: the intact net, the
    single deletions (with their block's ``branch_norm_ratio``), and for a ResNet the random
    ones."""
    net = trained.load_net()
    errors = functools.partial(lesion_errors, net, images, labels,
                               batch_size=budget.eval_batch_size, precision=budget.precision)

    def measure(cases: list[dict]) -> list[dict]:
        return [{**case, "test_error": error}
                for case, error in zip(cases, errors(cases) if cases else [], strict=True)]

    cases = measure(single_cases(net))
    ratios = branch_norm_ratios(net, images, budget.eval_batch_size, budget.precision)
    for case in cases[1:]:
        case["branch_norm_ratio"] = ratios[case["block"] - 1]
    if trained.family != PLAIN:
        cases += random_deletions(net, measure, budget.lesion_draws,
                                  torch.Generator().manual_seed(0))
    frame = pd.DataFrame(cases).assign(net=trained.net, depth=trained.depth,
                                       shortcut=trained.family)
    frame["deleted"] = [" ".join(str(i + 1) for i in d) for d in frame["deleted"]]
    return {"lesion": frame}


def veit_median_at(fraction: float) -> float | None:
    """Veit et al.'s median at this fraction of shape-keeping blocks deleted: linear between
    their points (k / 52, the intact net at 0); None beyond their last (20 of 52)."""
    fractions = [0.0] + [k / VEIT_BLOCKS for k in VEIT_MEDIANS]
    if fraction > fractions[-1]:
        return None
    return float(np.interp(fraction, fractions, [VEIT_INTACT, *VEIT_MEDIANS.values()]))


def random_medians(table: pd.DataFrame) -> pd.DataFrame:
    """Per net (each seed apart) and k: the median over the draws with its 95 % bootstrap
    interval (the median itself where every subset was measured), quartiles, extremes, the
    number of draws, and Veit et al.'s median at the same fraction of blocks deleted."""
    rows = []
    random = table[table["kind"] == "random"]
    if random.empty:
        return pd.DataFrame()
    for (label, net, seed, depth, k), draws in random.groupby(
            ["label", "net", "seed", "depth", "k"]):
        errors = draws["test_error"]
        median = float(errors.median())
        exhaustive = bool(draws["exhaustive"].astype(bool).all())
        low, high = (median, median) if exhaustive else median_interval(errors)
        fraction = float(draws["fraction"].iloc[0])
        rows.append({"label": label, "net": net, "seed": seed, "depth": depth, "k": int(k),
                     "fraction": fraction,
                     "median": median, "ci_low": low, "ci_high": high,
                     "q25": errors.quantile(0.25), "q75": errors.quantile(0.75),
                     "min": errors.min(), "max": errors.max(), "draws": len(errors),
                     "exhaustive": exhaustive, "veit_median": veit_median_at(fraction)})
    return pd.DataFrame(rows)


def plot_lesions(table: pd.DataFrame, medians: pd.DataFrame, title: str):
    """Left: test error with each single block deleted (ResNets solid, plain nets dashed, the
    intact net's error dotted; the seeds of a net in its colour). Middle: median test error
    (95 % intervals as bars, quartiles shaded) against the fraction of shape-keeping blocks
    deleted at random, with Veit et al.'s medians at their fractions. Right: each block's
    ‖F(x)‖ / ‖s(x)‖ (downsampling blocks ringed)."""
    figure, (single, random, ratio) = plt.subplots(1, 3, figsize=(18, 4.8))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    nets = table.drop_duplicates("net").sort_values(["shortcut", "depth"])["net"].tolist()
    lines = [(colour, label, rows) for colour, net in zip(palette, nets, strict=False)
             for label, rows in table[table["net"] == net].groupby("label", sort=False)]
    for colour, label, rows in lines:
        singles = rows[rows["kind"] == "single"]
        style = "--" if rows["shortcut"].iloc[0] == PLAIN else "-"
        single.plot(singles["block"], singles["test_error"], style, color=colour, marker=".",
                    label=label)
        single.axhline(rows[rows["kind"] == "intact"]["test_error"].iloc[0], color=colour,
                       linestyle=":", linewidth=1)
        ratio.plot(singles["block"], singles["branch_norm_ratio"], style, color=colour,
                   marker=".", label=label)
        down = singles[singles["downsampling"].astype(bool)]
        ratio.scatter(down["block"], down["branch_norm_ratio"], s=80, facecolors="none",
                      edgecolors=colour)
        points = medians[medians["label"] == label] if len(medians) else medians
        if not points.empty:
            random.errorbar(points["fraction"], points["median"], fmt="o-", color=colour,
                            yerr=[points["median"] - points["ci_low"],
                                  points["ci_high"] - points["median"]], capsize=2, label=label)
            random.fill_between(points["fraction"], points["q25"], points["q75"], color=colour,
                                alpha=0.15, linewidth=0)
    random.plot([k / VEIT_BLOCKS for k in VEIT_MEDIANS], list(VEIT_MEDIANS.values()), "k^:",
                label="Veit et al., pre-act. ResNet-110 (k of 52)")
    single.set_xlabel("deleted block (index, input to output)")
    random.set_xlabel("fraction of shape-keeping blocks deleted at random")
    ratio.set_xlabel("block (index, input to output; downsampling ringed)")
    ratio.set_ylabel("‖F(x)‖ / ‖shortcut(x)‖ on test images")
    ratio.set_yscale("log")
    for axis in (single, random):
        axis.set_ylabel("test error (%)")
        axis.set_ylim(0, 100)
    for axis in (single, random, ratio):
        axis.grid(alpha=0.3)
        axis.legend(fontsize="x-small")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def _singles_line(net: str, rows: pd.DataFrame) -> str:
    intact = rows[rows["kind"] == "intact"]["test_error"].iloc[0]
    singles = rows[rows["kind"] == "single"]
    down = singles["downsampling"].astype(bool)
    keeping, downsampling = singles[~down], singles[down]
    ratios = keeping["branch_norm_ratio"]
    rank = singles["branch_norm_ratio"].rank().corr(singles["test_error"].rank())  # Spearman's
    return (
        f"- {net} (intact: {intact:.1f} %): one block deleted, the shape-keeping blocks give "
        f"{keeping['test_error'].min():.1f}-{keeping['test_error'].max():.1f} % (median "
        f"{keeping['test_error'].median():.1f} %), the first block "
        f"{singles.iloc[0]['test_error']:.1f} %, the downsampling blocks "
        f"{', '.join(f'{e:.1f}' for e in downsampling['test_error'])} %. ‖F(x)‖ / ‖s(x)‖: "
        f"{ratios.min():.2f}-{ratios.max():.2f} (median {ratios.median():.2f}) over the "
        f"shape-keeping blocks, {', '.join(f'{r:.2f}' for r in downsampling['branch_norm_ratio'])}"
        f" for the downsampling ones; its rank correlation with the single-deletion error over "
        f"all blocks {rank:.2f}.")


def _random_line(points: pd.DataFrame) -> str:
    """The medians by k, each with its interval, and where Veit et al.'s median at the same
    fraction lies outside that interval."""
    def one(row) -> str:
        where = ("all subsets" if row["exhaustive"]
                 else f"[{row['ci_low']:.1f}, {row['ci_high']:.1f}], {int(row['draws'])} draws")
        return f"k={int(row['k'])} ({row['fraction']:.0%}) {row['median']:.1f} % ({where})"
    compared = points.dropna(subset=["veit_median"])
    above = compared[compared["ci_low"] > compared["veit_median"]]
    below = compared[compared["ci_high"] < compared["veit_median"]]
    wide = points[~points["exhaustive"] & ((points["ci_high"] - points["ci_low"]) / 2
                                          > HALF_WIDTH)]
    line = ("  Random deletions of shape-keeping blocks, median test error by k: "
            + "; ".join(one(row) for _, row in points.iterrows()) + ".")
    if not compared.empty:
        line += (f" At the same fractions (up to {compared['fraction'].max():.0%}), Veit et "
                 "al.'s medians, interpolated: " + ", ".join(
                     f"{v:.1f}" for v in compared["veit_median"]) + " %; ours lies above theirs "
                 f"beyond its interval at {len(above)}, below at {len(below)} of "
                 f"{len(compared)} fractions.")
    if not wide.empty:
        line += (f" The interval stayed wider than ±{HALF_WIDTH:.0f} point at the cap of draws "
                 "for k = " + ", ".join(str(int(k)) for k in wide["k"]) + ".")
    return line


def _across_seeds_line(net: str, rows: pd.DataFrame) -> str:
    """A net's single deletions seed by seed: is what one net shows a property of how these
    nets train, or of that net?"""
    singles = rows[rows["kind"] == "single"]
    down = singles["downsampling"].astype(bool)
    by_seed = {seed: group for seed, group in rows.groupby("seed")}

    def listed(values) -> str:
        values = list(values)
        return (f"{', '.join(f'{v:.1f}' for v in values)} % (mean {np.mean(values):.1f} ± "
                f"{np.std(values, ddof=1):.1f})")

    intact = [group[group["kind"] == "intact"]["test_error"].iloc[0]
              for group in by_seed.values()]
    keeping = singles[~down].groupby("seed")["test_error"].median()
    blocks = [f"block {int(block)} {listed(errors.sort_values('seed')['test_error'])}"
              for block, errors in singles[down].groupby("block")]
    return (f"- {net} over its {len(by_seed)} seeds ({', '.join(f'{s:.0f}' for s in by_seed)}"
            f"; mean ± standard deviation): intact {listed(intact)}; one shape-keeping block "
            f"deleted, median {listed(keeping)}; one downsampling block deleted, "
            + "; ".join(blocks) + ".")


def findings(table: pd.DataFrame, medians: pd.DataFrame) -> list[str]:
    """Each net, seed by seed, then each net with several seeds across them."""
    lines = []
    for label, rows in table.groupby("label", sort=False):
        lines.append(_singles_line(label, rows))
        points = medians[medians["label"] == label] if len(medians) else medians
        if not points.empty:
            lines.append(_random_line(points))
    for net, rows in table.groupby("net", sort=False):
        if rows["seed"].nunique() > 1:
            lines.append(_across_seeds_line(net, rows))
    return lines


COMPARISON = [
    "",
    "Beside Veit et al. (their pre-activation ResNet-110, test error 6.03 %, read off their "
    "Figures 3(a) and 5(a)): most single deletions gave 6.0-7.2 %, the first block 42 %, the "
    "downsampling blocks about 12 %; the median over random deletions of k = "
    + ", ".join(str(k) for k in VEIT_MEDIANS) + " of its 52 shape-keeping blocks was "
    + ", ".join(f"{m}" for m in VEIT_MEDIANS.values()) + " % (black triangles in the figure, "
    "at k / 52). Ours are compared at the same fraction of shape-keeping blocks deleted, not "
    "the same k: 10 blocks are 40 % of ResNet-56's 25 and 19 % of their 52.",
    "",
    "- Ours are the paper's post-activation nets: a ReLU follows every addition, so the net "
    "does not unravel exactly into a sum over paths as a pre-activation net (x + F(x), nothing "
    "on the sum) does, and deleting a block also changes what the later blocks' ReLUs and BN "
    "statistics see. The contrast that matters most is with the plain nets, where no path "
    "survives a deleted pair.",
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
    runs = context.trained("lesion")
    names = run_labels(runs)
    images, labels, words = dataset(context.config, "test", budget.lesion_images)
    measure = functools.partial(lesion_tables, images=images, labels=labels, budget=budget)
    table = pd.concat([measured_per_net(context, [trained], measure)["lesion"].assign(
        seed=trained.seed, label=names[trained.name]) for trained in runs], ignore_index=True)
    medians = random_medians(table)
    written = {"csv": save_csv(table, context.out_dir / "lesion.csv"),
               "medians": save_csv(medians.round(3), context.out_dir / "lesion_random.csv")}
    figure = plot_lesions(table, medians, context.title("Lesion study"))
    written["png"], written["pdf"] = save_figure(figure, context.out_dir / "lesion")
    measured = [
        "- " + " ".join(__doc__.strip().splitlines()[3:9]),
        f"- On {words}. Random deletions (ResNets) for k = 1-10 shape-keeping blocks, then every "
        f"fifth and the whole pool: every k-subset where there are at most {budget.lesion_draws} "
        f"(an exact median), else distinct random subsets, {ROUND} at a time (a fixed seed), "
        f"until the median's 95 % bootstrap interval ({RESAMPLES:,} resamples of the draws) is "
        f"within ±{HALF_WIDTH:.0f} point or {budget.lesion_draws} are drawn. Single deletions "
        "for every net, with each block's ‖F(x)‖ / ‖s(x)‖: its residual branch's output "
        "against the path a deletion keeps (shortcut, or a plain net's bypass), over the same "
        "images.",
        *precision_note({names[run.name]: run.load_net() for run in runs}, images, labels,
                        budget),
        *per_net_note(context, runs),
    ]
    written["readme"] = write_readme(
        context, context.title("Lesion study: deleting blocks of trained nets"), runs,
        measured, findings(table, medians) + COMPARISON
        + (SHORT_RUNS if context.short_schedule else []), ["lesion.png"])
    return written
