"""What the recipes' tables share: ``Table``, and the ImageNet tables' rows from the runs'
summaries beside the paper's numbers (Table 2 in ``fig4``, Table 3 in ``table3``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import pandas as pd

IMAGENET_COLUMNS = ["net", "depth", "shortcut", "params", "runs", "top1_mean", "top1_std",
                    "top5_mean", "top5_std", "paper_top1", "paper_top5"]


def imagenet_table(summary: pd.DataFrame, paper: dict) -> pd.DataFrame:
    """One row per net of ``paper`` that has finished runs: the final 10-crop top-1 and top-5
    validation error, mean and sample std over seeds, and the paper's."""
    done = summary[(summary["status"] == "done") & summary["net"].isin(list(paper))]
    grouped = done.groupby(["series", "net", "depth", "shortcut"], sort=False)
    table = grouped.agg(
        params=("params", "first"), runs=("top1_10crop", "size"),
        top1_mean=("top1_10crop", "mean"), top1_std=("top1_10crop", "std"),
        top5_mean=("top5_10crop", "mean"), top5_std=("top5_10crop", "std"),
    ).reset_index()
    table[["top1_std", "top5_std"]] = table[["top1_std", "top5_std"]].fillna(0.0)
    numbers = {net: value if isinstance(value, tuple) else (value, None)
               for net, value in paper.items()}
    table["paper_top1"] = [numbers[net][0] for net in table["net"]]
    table["paper_top5"] = [numbers[net][1] for net in table["net"]]
    table["order"] = [list(paper).index(net) for net in table["net"]]
    table = table.sort_values("order").astype({"depth": int, "params": int, "runs": int})
    table["net"] = table["series"]  # a net under one protocol; never pooled across protocols
    return table[IMAGENET_COLUMNS].round(2)


def _spread(mean: float, std: float, runs: int) -> str:
    return f"{mean:.2f}" + (f" ± {std:.2f}" if runs > 1 else "")


def imagenet_markdown(table: pd.DataFrame) -> str:
    lines = ["| net | runs | top-1 err. (%) | top-5 err. (%) | paper top-1 | paper top-5 |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in table.itertuples():
        paper5 = "-" if pd.isna(row.paper_top5) else f"{row.paper_top5:.2f}"
        lines.append(f"| {row.net} | {row.runs} | {_spread(row.top1_mean, row.top1_std, row.runs)}"
                     f" | {_spread(row.top5_mean, row.top5_std, row.runs)} | "
                     f"{row.paper_top1:.2f} | {paper5} |")
    return "\n".join(lines) + "\n"


class Table(NamedTuple):
    """A table of a recipe: its file stem, its heading, how it is built from the runs' summary
    and how it reads in markdown."""

    name: str
    title: str
    build: Callable[[pd.DataFrame], pd.DataFrame]
    markdown: Callable[[pd.DataFrame], str]
