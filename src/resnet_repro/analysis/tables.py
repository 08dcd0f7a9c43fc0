"""Table 6: test error per net, over seeds, beside the paper's."""

from __future__ import annotations

import pandas as pd

from resnet_repro.analysis.paper import TABLE6_TEST_ERROR

TABLE6_COLUMNS = ["net", "depth", "params", "runs", "error_mean", "error_std", "error_best",
                  "paper_error"]


def table6(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per net from its finished runs: final test error mean, standard deviation over
    seeds (sample std; 0 for a single run), best, and the paper's number for ResNets."""
    done = summary[summary["status"] == "done"]
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
    """The paper's layout: with several runs, "best (mean +- std)" as for its ResNet-110."""
    lines = ["| net | # layers | # params | runs | error (%) | paper (%) |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in table.itertuples():
        error = f"{row.error_mean:.2f}"
        if row.runs > 1:
            error = f"{row.error_best:.2f} ({row.error_mean:.2f} ± {row.error_std:.2f})"
        paper = "-" if pd.isna(row.paper_error) else f"{row.paper_error:.2f}"
        if row.depth == 110 and paper != "-":
            paper += " (6.61 ± 0.16)"
        lines.append(f"| {row.net} | {int(row.depth)} | {row.params / 1e6:.2f}M | {row.runs} | "
                     f"{error} | {paper} |")
    return "\n".join(lines) + "\n"
