"""The paper's tables from the runs' summaries, beside its numbers: Table 6 (CIFAR-10 test
error), Tables 2 and 3 (ImageNet 10-crop validation error)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import pandas as pd

from resnet_repro.analysis.paper import (
    TABLE2_TOP1,
    TABLE3_TOP1_TOP5,
    TABLE6_RESNET110_MEAN_STD,
    TABLE6_TEST_ERROR,
)

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
    title: str
    build: Callable[[pd.DataFrame], pd.DataFrame]
    markdown: Callable[[pd.DataFrame], str]


#: The tables ``analysis.tables`` can ask for, by name (the file stem).
TABLES = {
    "table6": Table("Table 6: CIFAR-10 test error (%)", table6, table6_markdown),
    "table2": Table("Table 2: ImageNet top-1 error (%), 10-crop testing, validation",
                    functools.partial(imagenet_table, paper=TABLE2_TOP1), imagenet_markdown),
    "table3": Table("Table 3: ImageNet error (%), 10-crop testing, validation",
                    functools.partial(imagenet_table, paper=TABLE3_TOP1_TOP5), imagenet_markdown),
}
