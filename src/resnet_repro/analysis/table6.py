"""Table 6: final test error of the ResNets (option A) on CIFAR-10 by depth, mean ± std over
seeds beside the paper's numbers, with Figure 6's panels of the same runs.

The grid (seeds per depth) is ``conf/experiment/table6.yaml``; this is the rest of the recipe.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from resnet_repro.analysis.context import Context
from resnet_repro.analysis.fig6 import plot_family_panels
from resnet_repro.analysis.paper import TABLE6_RESNET110_MEAN_STD, TABLE6_TEST_ERROR
from resnet_repro.analysis.report import heading, write_results
from resnet_repro.analysis.tables import Table

TABLE6_COLUMNS = ["net", "depth", "params", "runs", "error_mean", "error_std", "error_best",
                  "paper_error"]


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
    return table[TABLE6_COLUMNS].round(2)


def table6_markdown(table: pd.DataFrame) -> str:
    """Beside the paper's numbers in the paper's form: mean ± std over seeds where the paper
    gives single runs (20-56, 1202), "best (mean ± std)" where it gives its best of 5 (110)."""
    lines = ["| net | # layers | # params | runs | error (%) | paper (%) |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in table.itertuples():
        error = f"{row.error_mean:.2f}"
        if row.runs > 1:
            error = f"{row.error_mean:.2f} ± {row.error_std:.2f}"
            if row.depth == 110 and not pd.isna(row.paper_error):
                error = f"best {row.error_best:.2f} ({error})"
        paper = "-" if pd.isna(row.paper_error) else f"{row.paper_error:.2f}"
        if row.depth == 110 and paper != "-":
            paper = f"best {paper} ({TABLE6_RESNET110_MEAN_STD})"
        lines.append(f"| {row.net} | {int(row.depth)} | {row.params / 1e6:.2f}M | {row.runs} | "
                     f"{error} | {paper} |")
    return "\n".join(lines) + "\n"


TABLE6 = Table("table6", "Table 6: CIFAR-10 test error (%)", table6, table6_markdown)


def run(context: Context) -> dict[str, Path]:
    curves, _ = context.tables
    figure = plot_family_panels(curves, heading(context), context.config.analysis.y_max)
    return write_results(context, figure, tables=[TABLE6])
