"""bf16 autocast against fp32: does mixed precision change what the runs show?

The paper trained in fp32; bf16 autocast (fp32 master weights) trains 1.5-1.7x as fast on this
project's AMD EPYC CPUs (make bench) and about 2.2x on an Intel Xeon with AMX. The rule that
decides the paper-profile runs on a CPU: bf16 is used only if, for every net, the mean final
training and test errors of its bf16 seeds agree with its fp32 seeds' (the difference within
two standard errors, sqrt(s1²/n1 + s2²/n2) from each side's own seeds), and the degradation
gap (plain-56 minus plain-20) agrees likewise; otherwise fp32. A sanity check that would catch
a real failure (a plain net that diverges, a gap that moves), not a proof of equality.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from resnet_repro.analysis.claims import Side
from resnet_repro.analysis.context import Context
from resnet_repro.analysis.nets import save_csv, write_readme
from resnet_repro.analysis.plots import plt, save_figure

PRECISIONS = ("32-true", "bf16-mixed")
COLUMNS = {"train_error": "training", "test_error": "test"}
GAP = ("plain-20", "plain-56")


def sides(done: pd.DataFrame, net: str, column: str) -> list[Side]:
    """The net's final errors over its seeds, fp32 then bf16."""
    result = []
    for precision in PRECISIONS:
        rows = done[(done["net"] == net) & (done["precision"] == precision)].sort_values("seed")
        result.append(Side(f"{net} {precision}", rows[column].tolist(),
                           rows["seed"].astype(int).tolist()))
    return result


def agreement(difference: float, variances: list[float], counts: list[int]) -> dict:
    """The difference beside two standard errors; agreement where it is within them."""
    two_se = 2 * math.sqrt(sum(v / n for v, n in zip(variances, counts, strict=True)))
    return {"difference": round(difference, 2), "two_se": round(two_se, 2),
            "agree": abs(difference) <= two_se}


def compare(done: pd.DataFrame) -> pd.DataFrame:
    """One row per net and error: fp32 and bf16 mean ± std over seeds, their difference."""
    rows = []
    for net in sorted(done["net"].unique(), key=lambda n: (n.split("-")[0], int(n.split("-")[1]))):
        for column, name in COLUMNS.items():
            fp32, bf16 = sides(done, net, column)
            if min(fp32.n, bf16.n) < 2:
                continue
            rows.append({"net": net, "error": name, "fp32": str(fp32), "bf16": str(bf16),
                         **agreement(bf16.mean - fp32.mean, [fp32.std**2, bf16.std**2],
                                     [fp32.n, bf16.n])})
    return pd.DataFrame(rows)


def compare_gaps(done: pd.DataFrame) -> pd.DataFrame:
    """The plain-56 minus plain-20 gap at each precision, and whether the two agree."""
    rows = []
    for column, name in COLUMNS.items():
        (low32, low16), (high32, high16) = (sides(done, net, column) for net in GAP)
        four = (low32, low16, high32, high16)
        if min(side.n for side in four) < 2:
            continue
        fp32_gap, bf16_gap = high32.mean - low32.mean, high16.mean - low16.mean
        rows.append({"error": name, "fp32_gap": round(fp32_gap, 2),
                     "bf16_gap": round(bf16_gap, 2),
                     **agreement(bf16_gap - fp32_gap, [s.std**2 for s in four],
                                 [s.n for s in four])})
    return pd.DataFrame(rows)


def plot(done: pd.DataFrame, title: str):
    """Each seed's final training and test error per net, fp32 beside bf16."""
    nets = sorted(done["net"].unique(), key=lambda n: (n.split("-")[0], int(n.split("-")[1])))
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, (column, name) in zip(axes, COLUMNS.items(), strict=True):
        for offset, precision in zip((-0.12, 0.12), PRECISIONS, strict=True):
            rows = done[done["precision"] == precision]
            x = [nets.index(net) + offset for net in rows["net"]]
            axis.scatter(x, rows[column], label=precision, s=18)
        axis.set_xticks(range(len(nets)), nets)
        axis.set_title(f"final {name} error")
        axis.set_ylabel("error (%)")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def run(context: Context) -> dict[str, Path]:
    _, summary = context.tables
    done = summary[summary["status"] == "done"]
    nets, gaps = compare(done), compare_gaps(done)
    out = context.out_dir
    written = {"comparison": save_csv(nets, out / "comparison.csv"),
               "gaps": save_csv(gaps, out / "gap.csv"),
               "summary": save_csv(summary, out / "summary.csv")}
    figure = plot(done, context.title("bf16 autocast against fp32"))
    written["figure"] = save_figure(figure, out / "precision")[0]
    plt.close(figure)
    written["readme"] = write_readme(
        context, context.title("Precision: bf16 autocast against fp32"), context.finished,
        measured(nets, gaps), decision(nets, gaps), ["precision.png"])
    return written


def measured(nets: pd.DataFrame, gaps: pd.DataFrame) -> list[str]:
    lines = [__doc__.split("\n\n")[1].replace("\n", " "), "",
             "Final errors (%) at the last iteration, mean ± std over seeds:", "",
             "| net | error | fp32 | bf16 | bf16 - fp32 | 2 SE | agree |",
             "|---|---|---|---|---:|---:|---|"]
    lines += [f"| {r.net} | {r.error} | {r.fp32} | {r.bf16} | {r.difference:+.2f} | "
              f"{r.two_se:.2f} | {'yes' if r.agree else 'NO'} |" for r in nets.itertuples()]
    lines += ["", f"The degradation gap, {GAP[1]} minus {GAP[0]} (points):", "",
              "| error | fp32 gap | bf16 gap | difference | 2 SE | agree |",
              "|---|---:|---:|---:|---:|---|"]
    lines += [f"| {r.error} | {r.fp32_gap:.2f} | {r.bf16_gap:.2f} | {r.difference:+.2f} | "
              f"{r.two_se:.2f} | {'yes' if r.agree else 'NO'} |" for r in gaps.itertuples()]
    return lines


def decision(nets: pd.DataFrame, gaps: pd.DataFrame) -> list[str]:
    if nets.empty or gaps.empty:
        return ["No decision: a net or the gap lacks two seeds at one of the precisions."]
    disagreeing = [f"{r.net} ({r.error})" for r in nets.itertuples() if not r.agree]
    disagreeing += [f"the gap ({r.error})" for r in gaps.itertuples() if not r.agree]
    if disagreeing:
        return [f"bf16 and fp32 disagree for {', '.join(disagreeing)}: the paper-profile runs "
                "on a CPU train in fp32."]
    return [f"bf16 and fp32 agree for every net ({', '.join(nets['net'].unique())}), training "
            "and test error alike, and on the degradation gap: the paper-profile runs on a CPU "
            "train with bf16 autocast (fp32 master weights), twins alike."]
