"""Table 6: final test error of the ResNets (option A) on CIFAR-10 by depth, mean ± std over
seeds beside the paper's numbers, with Figure 6's panels of the same runs.

The grid (seeds per depth) is ``conf/experiment/table6.yaml``; this is the rest of the recipe.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from resnet_repro.analysis.context import Context
from resnet_repro.analysis.fig6 import plot_family_panels
from resnet_repro.analysis.paper import TABLE6_RESNET110_RUNS, TABLE6_TEST_ERROR
from resnet_repro.analysis.report import heading, write_results
from resnet_repro.analysis.tables import Table

TABLE6_COLUMNS = ["net", "depth", "params", "runs", "error_mean", "error_std", "error_best",
                  "paper_error", "minus_paper", "minus_paper_se"]


def table6(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per series (a net under one protocol) from its finished runs: final test error
    mean, standard deviation over seeds (sample std; 0 for a single run), best, and the paper's
    number for ResNets."""
    done = summary[summary["status"] == "done"].drop(columns="net").rename(
        columns={"series": "net"})
    grouped = done.groupby(["shortcut", "depth", "net"], sort=True)
    table = grouped.agg(
        params=("params", "first"), runs=("test_error", "size"),
        error_mean=("test_error", "mean"), error_std=("test_error", "std"),
        error_best=("test_error", "min"),
    ).reset_index()
    table["error_std"] = table["error_std"].fillna(0.0)
    table["paper_error"] = [
        TABLE6_TEST_ERROR.get(depth) if shortcut == "A" else None
        for shortcut, depth in zip(table["shortcut"], table["depth"], strict=True)
    ]
    table = table.astype({"depth": int, "params": int, "runs": int})
    table["minus_paper"], table["minus_paper_se"] = zip(
        *(_minus_paper(row) for row in table.itertuples()), strict=True) if len(table) else ((), ())
    return table[TABLE6_COLUMNS].round(2)


def _minus_paper(row) -> tuple[float, float]:
    """Our mean minus the paper's, and its standard error from our seeds (NaN with one run):
    against ResNet-110's mean of 5 runs, sqrt(s²/n + 0.16²/5); against a single run (every
    other depth), s·sqrt(1/n + 1), the paper's run carrying a seed's noise taken to be ours."""
    if pd.isna(row.paper_error):
        return float("nan"), float("nan")
    n, std = row.runs, row.error_std if row.runs > 1 else float("nan")
    if row.depth == 110:
        mean, paper_std, paper_runs = TABLE6_RESNET110_RUNS
        return row.error_mean - mean, (std**2 / n + paper_std**2 / paper_runs) ** 0.5
    return row.error_mean - row.paper_error, std * (1 / n + 1) ** 0.5


def table6_markdown(table: pd.DataFrame) -> str:
    """Beside the paper's numbers in the paper's form: mean ± std over seeds where the paper
    gives single runs (20-56, 1202), "best (mean ± std)" where it gives its best of 5 (110);
    ours minus the paper's (mean, for 110) ± its standard error where we have seeds."""
    lines = ["| net | # layers | # params | runs | error (%) | paper (%) | ours - paper ± SE |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in table.itertuples():
        error = f"{row.error_mean:.2f}"
        if row.runs > 1:
            error = f"{row.error_mean:.2f} ± {row.error_std:.2f}"
            if row.depth == 110 and not pd.isna(row.paper_error):
                error = f"best {row.error_best:.2f} ({error})"
        paper = "-" if pd.isna(row.paper_error) else f"{row.paper_error:.2f}"
        if row.depth == 110 and paper != "-":
            mean, std, runs = TABLE6_RESNET110_RUNS
            paper = f"best {paper} ({mean:.2f} ± {std:.2f}, {runs} runs)"
        difference = "-" if pd.isna(row.minus_paper) else f"{row.minus_paper:+.2f}" + (
            "" if pd.isna(row.minus_paper_se) else f" ± {row.minus_paper_se:.2f}")
        lines.append(f"| {row.net} | {int(row.depth)} | {row.params / 1e6:.2f}M | {row.runs} | "
                     f"{error} | {paper} | {difference} |")
    mean, std, runs = TABLE6_RESNET110_RUNS
    return "\n".join(lines) + (
        f"\n\nThe paper's only spread over seeds is ResNet-110's, {mean:.2f} ± {std:.2f} over "
        f"{runs} runs; its other depths are single runs. Runs: our seeds (n) per net.\n")


TABLE6 = Table("table6", "Table 6: CIFAR-10 test error (%)", table6, table6_markdown)


def run(context: Context) -> dict[str, Path]:
    curves, _ = context.tables
    figure = plot_family_panels(curves, heading(context), context.config.analysis.y_max)
    return write_results(context, figure, tables=[TABLE6])
