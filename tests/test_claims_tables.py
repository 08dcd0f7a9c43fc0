"""Table 6, make verify and Figure 6's panels, on hand-made results with known numbers."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from resnet_repro.analysis.plots import plot_family_panels
from resnet_repro.analysis.tables import table6, table6_markdown

ROOT = Path(__file__).resolve().parents[1]


def runs(rows) -> pd.DataFrame:
    """Summary rows (net, depth, shortcut, seed, train_error, test_error), all done."""
    frame = pd.DataFrame(rows, columns=["net", "depth", "shortcut", "seed", "train_error",
                                        "test_error"])
    return frame.assign(status="done", params=frame["depth"] * 1000,
                        run=frame["net"] + "-seed" + frame["seed"].astype(str))


def test_table6_aggregates_seeds_and_sits_beside_the_paper():
    table = table6(runs([
        ("resnet-110", 110, "A", 0, 1.0, 6.0), ("resnet-110", 110, "A", 1, 1.0, 7.0),
        ("resnet-110", 110, "A", 2, 1.0, 8.0), ("resnet-20", 20, "A", 0, 2.0, 9.0),
        ("plain-20", 20, "none", 0, 3.0, 10.0),
    ]))
    rows = table.set_index("net")
    assert rows.loc["resnet-110", "runs"] == 3
    assert rows.loc["resnet-110", "error_mean"] == pytest.approx(7.0)
    assert rows.loc["resnet-110", "error_std"] == pytest.approx(1.0)
    assert rows.loc["resnet-110", "error_best"] == pytest.approx(6.0)
    assert rows.loc["resnet-110", "paper_error"] == pytest.approx(6.43)
    assert rows.loc["resnet-20", "error_std"] == 0 and rows.loc["resnet-20", "paper_error"] == 8.75
    assert pd.isna(rows.loc["plain-20", "paper_error"])
    markdown = table6_markdown(table)
    assert "| resnet-110 | 110 | 0.11M | 3 | 6.00 (7.00 ± 1.00) | 6.43 (6.61 ± 0.16) |" in markdown


def write_results(root: Path, experiment: str, rows) -> None:
    folder = root / experiment / "cpu"
    folder.mkdir(parents=True)
    runs(rows).to_csv(folder / "summary.csv", index=False)


def test_verify_prints_pass_fail_and_not_run(tmp_path):
    write_results(tmp_path, "fig1", [
        ("plain-20", 20, "none", 0, 40.0, 38.0), ("plain-56", 56, "none", 0, 66.0, 64.0)])
    write_results(tmp_path, "fig6", [
        ("plain-20", 20, "none", 0, 40.0, 38.0),  # the same run as fig1's, counted once
        ("resnet-20", 20, "A", 0, 35.0, 33.0),
        ("resnet-56", 56, "A", 0, 30.0, 40.0), ("resnet-56", 56, "A", 1, 20.0, 30.0),
    ])
    output = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "verify.py"), "--results", str(tmp_path)],
        capture_output=True, text=True, check=True,
    ).stdout
    lines = [line for line in output.splitlines() if line[:4] in ("PASS", "FAIL", "NOT ")]
    verdicts = {line[9:]: line[:8].strip() for line in lines}
    assert verdicts["deeper plain nets have higher training error (20 < 56)"] == "PASS"
    assert verdicts["plain training error rises with depth (20 < 32 < 44 < 56)"] == "NOT RUN"
    assert verdicts["ResNet-20 has lower training and test error than plain-20"] == "PASS"
    # resnet-56: train 25 ± 7.07, test 35 ± 7.07 against plain 66 / 64: a clear gap
    assert verdicts["ResNet-56 has lower training and test error than plain-56"] == "PASS"
    # resnet-20's 33 against resnet-56's 35 ± 7.07: inside the spread, so no ordering
    assert verdicts["deeper ResNets have lower test error (20 > 32 > 44 > 56 > 110)"] == "NOT RUN"
    assert "resnet-56 35.00 ± 7.07 (2 runs)" in output
    assert output.count("plain-20 40.00 (1 run)") >= 1


def test_verify_fails_a_gap_inside_the_seeds_spread(tmp_path):
    write_results(tmp_path, "fig6", [
        ("plain-20", 20, "none", 0, 40.0, 38.0), ("plain-20", 20, "none", 1, 50.0, 38.0),
        ("plain-56", 56, "none", 0, 48.0, 64.0), ("plain-56", 56, "none", 1, 52.0, 64.0),
    ])
    output = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "verify.py"), "--results", str(tmp_path)],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "FAIL     deeper plain nets have higher training error (20 < 56)" in output


def test_figure6_panels_hold_the_lines_asked_for():
    rows = []
    for shortcut, family in (("none", "plain"), ("A", "resnet")):
        for depth in (20, 56, 110, 1202):
            for split in ("train", "test"):
                for iteration in (100, 200):
                    rows.append((f"{family}-{depth}", depth, shortcut, 0, iteration, split, 50.0))
    curves = pd.DataFrame(rows, columns=["net", "depth", "shortcut", "seed", "iteration",
                                         "split", "error"])
    curves = curves[~((curves["shortcut"] == "none") & (curves["depth"] >= 110))]
    figure = plot_family_panels(curves, "fig6", y_max=20)
    labels = [[line.get_label() for line in axis.get_lines()] for axis in figure.axes]
    styles = [[line.get_linestyle() for line in axis.get_lines()] for axis in figure.axes]
    assert [label for label in labels[0] if not label.startswith("_")] == ["plain-20", "plain-56"]
    assert [label for label in labels[1] if not label.startswith("_")] == [
        "resnet-20", "resnet-56", "resnet-110"]
    assert [label for label in labels[2] if not label.startswith("_")] == [
        "resnet-110", "resnet-1202"]
    assert styles[0] == ["--", "-", "--", "-"]  # dashed training, bold test, per net
    assert all(axis.get_ylim() == (0, 20) for axis in figure.axes)
