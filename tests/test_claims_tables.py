"""Table 6, make verify and Figure 6's panels, on hand-made results with known numbers."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from resnet_repro.analysis.claims import load_summaries
from resnet_repro.analysis.collect import series_labels, steady_training_error
from resnet_repro.analysis.fig6 import plot_family_panels
from resnet_repro.analysis.table6 import table6, table6_markdown

ROOT = Path(__file__).resolve().parents[1]


def runs(rows, group: str = "protocol-1") -> pd.DataFrame:
    """Summary rows (net, depth, shortcut, seed, train_error, test_error), all done, each net
    under one protocol (``group``)."""
    frame = pd.DataFrame(rows, columns=["net", "depth", "shortcut", "seed", "train_error",
                                        "test_error"])
    return frame.assign(status="done", params=frame["depth"] * 1000, group=group + frame["net"],
                        train_error_last10=frame["train_error"],
                        series=frame["net"],
                        run=frame["net"] + "-seed" + frame["seed"].astype(str) + group)


def test_table6_aggregates_seeds_and_sits_beside_the_paper():
    table = table6(runs([
        ("resnet-110", 110, "A", 0, 1.0, 6.0), ("resnet-110", 110, "A", 1, 1.0, 7.0),
        ("resnet-110", 110, "A", 2, 1.0, 8.0), ("resnet-20", 20, "A", 0, 2.0, 9.0),
        ("resnet-56", 56, "A", 0, 2.0, 7.0), ("resnet-56", 56, "A", 1, 2.0, 7.5),
        ("plain-20", 20, "plain", 0, 3.0, 10.0),
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
    # the paper's form: best of 5 (mean ± std) for 110 only, mean ± std beside its single runs
    # 7.00 - 6.61 ± sqrt(1/3 + 0.16²/5); 7.25 - 6.97 ± 0.354 x sqrt(1/2 + 1)
    assert ("| resnet-110 | 110 | 0.11M | 3 | best 6.00 (7.00 ± 1.00) | best 6.43 (6.61 ± 0.16, "
            "5 runs) | +0.39 ± 0.58 |" in markdown)
    assert "| resnet-56 | 56 | 0.06M | 2 | 7.25 ± 0.35 | 6.97 | +0.28 ± 0.43 |" in markdown
    assert "| resnet-20 | 20 | 0.02M | 1 | 9.00 | 8.75 | +0.25 |" in markdown
    assert "| plain-20 | 20 | 0.02M | 1 | 10.00 | - | - |" in markdown


def test_table6_keeps_two_protocols_apart():
    summary = pd.concat([runs([("resnet-110", 110, "A", 0, 1.0, 6.0)], group="warm-up"),
                         runs([("resnet-110", 110, "A", 0, 1.0, 9.0)], group="no warm-up")])
    summary["series"] = series_labels(summary)
    table = table6(summary)
    assert len(table) == 2 and sorted(table["error_mean"]) == [6.0, 9.0]
    assert all(name.startswith("resnet-110 [") for name in table["net"])


def write_results(root: Path, experiment: str, rows, profile: str = "cpu", group="p") -> None:
    folder = root / experiment / profile
    folder.mkdir(parents=True, exist_ok=True)
    runs(rows, group).to_csv(folder / "summary.csv", index=False)


def verify_output(results: Path) -> tuple[dict[str, str], str]:
    output = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "verify.py"), "--results", str(results)],
        capture_output=True, text=True, check=True,
    ).stdout
    verdicts = {}
    for line in output.splitlines():
        result, _, claim = line.partition(" ")
        if result in ("PASS", "FAIL", "INCONCLUSIVE", "NOT", "MIXED", "PARTIAL"):
            verdicts[claim.removeprefix("RUN").strip()] = result
    return verdicts, output


PLAIN_CHAIN = "plain training error rises with depth (20 < 32 < 44 < 56)"
RESNET_CHAIN = "deeper ResNets have lower test error (20 > 32 > 44 > 56 > 110)"
PLAIN_PAIR = "deeper plain nets have higher training error (20 < 56)"
DEEPEST = "ResNet-1202 has higher test error than ResNet-110"


def test_verify_with_one_seed_and_no_measured_spread_passes_nothing(tmp_path):
    write_results(tmp_path, "fig6", [
        ("plain-20", 20, "plain", 0, 40.0, 38.0), ("plain-56", 56, "plain", 0, 66.0, 64.0),
        ("resnet-20", 20, "A", 0, 35.0, 33.0)])
    verdicts, output = verify_output(tmp_path)
    assert verdicts[PLAIN_PAIR] == "INCONCLUSIVE"  # a 26-point gap, but no spread measured
    assert verdicts[PLAIN_CHAIN] == "INCONCLUSIVE"  # judged on the two depths that exist
    assert "not run: plain-32, plain-44" in output
    assert verdicts["ResNet-20 has lower training and test error than plain-20"] == \
        "INCONCLUSIVE"
    assert "train_error_last10: no plain net with several seeds near 40.00" in output
    assert "plain-20 40.00 (seeds 0) < plain-56 66.00 (seeds 0)" in output


def test_verify_one_seed_nets_against_the_measured_noise_floor(tmp_path):
    # Figure 1 over three seeds: the spread (std 1 point) that one-run claims are held to
    write_results(tmp_path, "fig1", [
        ("plain-20", 20, "plain", seed, 40.0 + seed, 38.0 + seed) for seed in range(3)] + [
        ("plain-56", 56, "plain", seed, 60.0 + seed, 58.0 + seed) for seed in range(3)])
    write_results(tmp_path, "fig6", [
        ("plain-20", 20, "plain", 0, 40.0, 38.0),  # the same run as fig1's, counted once
        ("plain-32", 32, "plain", 0, 45.0, 43.0), ("plain-44", 44, "plain", 0, 50.0, 48.0),
        ("plain-56", 56, "plain", 0, 60.0, 58.0),
        ("resnet-20", 20, "A", 0, 35.0, 33.0),  # 6 below plain-20's mean: 2 SE = 2.31
        ("resnet-56", 56, "A", 0, 60.0, 58.5),  # inside the noise of plain-56's 61 / 59
    ])
    verdicts, output = verify_output(tmp_path)
    assert "train_error_last10 noise floor 1.00 points (4 degrees of freedom), the pooled std of " \
           "plain-20 (3 seeds), plain-56 (3 seeds)" in output
    assert verdicts[PLAIN_PAIR] == "PASS"
    assert verdicts[PLAIN_CHAIN] == "PASS"  # plain-32 and plain-44 borrow their family's floor
    # the one-run ResNets have no family floor: the plain nets' spread is not theirs
    assert verdicts["ResNet-20 has lower training and test error than plain-20"] == \
        "INCONCLUSIVE"
    assert "no resnet net with several seeds near 35.00" in output
    assert "plain-20 41.00 ± 1.00 (seeds 0,1,2)" in output


def test_verify_lends_no_floor_across_families_or_error_levels(tmp_path):
    """The paper's Figure 6 as one-run plain nets beside multi-seed ResNets: the ResNets'
    spread (0.2 points at 7 %) used to pass plain-20 1.30 < plain-56 5.60."""
    rows = [(f"resnet-{depth}", depth, "A", seed, 0.5, error)
            for depth, errors in PAPER_LIKE.items() for seed, error in enumerate(errors)]
    rows += [("plain-20", 20, "plain", 0, 1.30, 9.6), ("plain-56", 56, "plain", 0, 5.60, 13.3)]
    write_results(tmp_path, "fig6", rows, profile="paper")
    verdicts, output = verify_output(tmp_path)
    assert verdicts[PLAIN_PAIR] == "INCONCLUSIVE"
    assert "train_error_last10: no plain net with several seeds near 1.30" in output
    # a one-run ResNet-1202 at 7.93 % test error borrows the ResNets' spread at 6-9 %
    write_results(tmp_path, "fig6", rows + [("resnet-1202", 1202, "A", 0, 0.5, 7.93)],
                  profile="paper")
    verdicts, output = verify_output(tmp_path)
    assert "test_error noise floor 0.18 points (12 degrees of freedom), the pooled std of " \
           "resnet-110 (5 seeds), resnet-20 (3 seeds)" in output
    assert verdicts[DEEPEST] == "PASS"


def test_verify_does_not_pass_a_gap_between_sides_without_spread(tmp_path):
    write_results(tmp_path, "table6", [("resnet-110", 110, "A", seed, 0.1, 0.50)
                                       for seed in range(2)] +
                  [("resnet-1202", 1202, "A", seed, 0.1, 0.51) for seed in range(2)],
                  profile="paper")
    verdicts, output = verify_output(tmp_path)
    assert verdicts[DEEPEST] == "INCONCLUSIVE"
    assert "no spread measured" in output


def test_verify_reads_the_papers_figures_only(tmp_path):
    """The precision comparison trains plain-20 in bf16 too: another protocol, not a seed."""
    write_results(tmp_path, "fig1", [("plain-20", 20, "plain", 0, 40.0, 38.0),
                                     ("plain-56", 56, "plain", 0, 66.0, 64.0)])
    write_results(tmp_path, "precision", [("plain-20", 20, "plain", 0, 41.0, 39.0)], group="bf")
    verdicts, _ = verify_output(tmp_path)
    assert verdicts[PLAIN_PAIR] == "INCONCLUSIVE"  # not MIXED: the bf16 run is not read


def test_verify_uses_welch_t_for_few_seeds(tmp_path):
    """3 against 3 seeds, std 1 each: SE 0.82; a gap of 2.0 exceeds 2 SE (1.63) but not
    t(0.975, 4 dof) = 2.78 SE (2.27)."""
    write_results(tmp_path, "fig1", [
        ("plain-20", 20, "plain", seed, 40.0 + seed, 38.0) for seed in range(3)] + [
        ("plain-56", 56, "plain", seed, 42.0 + seed, 58.0) for seed in range(3)])
    verdicts, output = verify_output(tmp_path)
    assert verdicts[PLAIN_PAIR] == "INCONCLUSIVE"
    assert "gap 2.00, threshold 2.27 = t 2.78 x SE 0.82" in output
    assert "one-sided 97.5 % level" in output


def test_verify_counts_a_floor_two_sides_share_once(tmp_path):
    """plain-20 and plain-56 one run each, both borrowing plain-32's 3 seeds (std 1, 2 degrees
    of freedom): SE sqrt(1 + 1) = 1.41 with 2 degrees of freedom, t 4.30 (counted twice, 4
    degrees of freedom gave t 2.78 and passed this gap of 5)."""
    write_results(tmp_path, "fig6", [("plain-32", 32, "plain", seed, 44.0 + seed, 40.0)
                                     for seed in range(3)] +
                  [("plain-20", 20, "plain", 0, 40.0, 38.0),
                   ("plain-56", 56, "plain", 0, 45.0, 58.0)])
    verdicts, output = verify_output(tmp_path)
    assert "gap 5.00, threshold 6.08 = t 4.30 x SE 1.41" in output
    assert verdicts[PLAIN_PAIR] == "INCONCLUSIVE"


def test_verify_one_seed_against_three_borrowing_their_floor(tmp_path):
    """plain-20 one run borrows plain-56's own floor (3 seeds, std 1): the variance
    1 + 1/3 rests on those 2 degrees of freedom alone: SE 1.15, t 4.30, threshold 4.97."""
    write_results(tmp_path, "fig1", [("plain-20", 20, "plain", 0, 40.0, 38.0)] +
                  [("plain-56", 56, "plain", seed, 43.5 + seed, 58.0) for seed in range(3)])
    verdicts, output = verify_output(tmp_path)
    assert "gap 4.50, threshold 4.97 = t 4.30 x SE 1.15" in output
    assert verdicts[PLAIN_PAIR] == "INCONCLUSIVE"  # Welch with 2 + 2 dof passed it (t 3.0)


def test_verify_two_seeds_against_two(tmp_path):
    """Variances 2 and 2 over 2 seeds each: SE sqrt(1 + 1) = 1.41; 1 + 1 degrees of freedom
    give Welch's 2, t 4.30: a gap of 10 passes, one of 5 does not."""
    for gap, result in ((10.0, "PASS"), (5.0, "INCONCLUSIVE")):
        write_results(tmp_path, "fig1", [
            ("plain-20", 20, "plain", 0, 40.0, 38.0), ("plain-20", 20, "plain", 1, 42.0, 38.0),
            ("plain-56", 56, "plain", 0, 40.0 + gap, 58.0),
            ("plain-56", 56, "plain", 1, 42.0 + gap, 58.0)])
        verdicts, output = verify_output(tmp_path)
        assert "threshold 6.08 = t 4.30 x SE 1.41" in output
        assert verdicts[PLAIN_PAIR] == result


def test_a_chain_passing_on_some_of_its_nets_is_partial_and_names_its_links(tmp_path):
    write_results(tmp_path, "table6", [(f"resnet-{depth}", depth, "A", seed, 0.5, error)
                                       for depth in (20, 56)
                                       for seed, error in enumerate(PAPER_LIKE[depth])])
    verdicts, output = verify_output(tmp_path)
    assert verdicts[RESNET_CHAIN] == "PARTIAL"
    assert "not run: resnet-110, resnet-44, resnet-32; tested on 2 of 5 nets, links " \
           "resnet-56 < resnet-20" in output


def test_verify_judges_training_error_on_its_steady_value(tmp_path):
    """The last window says plain-20 trains worse; the last 10 windows say better."""
    rows = runs([("plain-20", 20, "plain", s, 50.0, 38.0) for s in range(3)] +
                [("plain-56", 56, "plain", s, 40.0, 58.0) for s in range(3)])
    rows["train_error_last10"] = [40.0, 41.0, 42.0, 60.0, 61.0, 62.0]
    (tmp_path / "fig1" / "cpu").mkdir(parents=True)
    rows.to_csv(tmp_path / "fig1" / "cpu" / "summary.csv", index=False)
    verdicts, output = verify_output(tmp_path)
    assert verdicts[PLAIN_PAIR] == "PASS"
    assert "train_error_last10: plain-20 41.00 ± 1.00" in output


def test_the_steady_training_error_averages_the_last_ten_windows_at_the_final_rate():
    first = pd.DataFrame({"step": [99, 199, 299], "train/err": [50.0, 40.0, 30.0],
                          "lr": [0.1, 0.1, 0.01]})
    second = pd.DataFrame({"step": [299 + 100 * k for k in range(1, 13)],  # a resume at 300
                           "train/err": [20.0] * 2 + [10.0] * 10, "lr": [0.01] * 12})
    assert steady_training_error([first, second], max_steps=1500) == 10.0
    assert steady_training_error([first], max_steps=300) == 30.0  # one window at the rate
    assert math.isnan(steady_training_error([first], max_steps=1500))  # not finished


PAPER_LIKE = {20: (8.75, 8.55, 8.95), 32: (7.51, 7.31, 7.71), 44: (7.17, 6.97, 7.37),
              56: (6.97, 6.77, 7.17), 110: (6.43, 6.61, 6.60, 6.75, 6.66)}


def test_verify_passes_a_several_seed_chain_with_the_papers_gaps(tmp_path):
    rows = [(f"resnet-{depth}", depth, "A", seed, 0.5, error)
            for depth, errors in PAPER_LIKE.items() for seed, error in enumerate(errors)]
    write_results(tmp_path, "table6", rows + [("resnet-1202", 1202, "A", 0, 0.5, 7.93)],
                  profile="paper")
    verdicts, output = verify_output(tmp_path)
    # 44 -> 56 is 0.2 points, inside the noise, but in order; the ends differ by 2.2 points
    assert verdicts[RESNET_CHAIN] == "PASS"
    assert "resnet-110 6.61 ± 0.12 (seeds 0,1,2,3,4)" in output
    assert verdicts[DEEPEST] == "PASS"  # 7.93 against 6.61 ± 0.12, floor from the seeds


def test_verify_fails_a_significant_reversal_and_does_not_pass_a_tie(tmp_path):
    rows = [(f"resnet-{depth}", depth, "A", seed, 0.5, error)
            for depth, errors in PAPER_LIKE.items() for seed, error in enumerate(errors)]
    rows = [(n, d, s, seed, t, e + (3.0 if d == 56 else 0.0)) for n, d, s, seed, t, e in rows]
    write_results(tmp_path, "table6", rows + [("resnet-1202", 1202, "A", 0, 0.5, 6.62)],
                  profile="paper")
    verdicts, _ = verify_output(tmp_path)
    assert verdicts[RESNET_CHAIN] == "FAIL"  # 56 three points above 44: significant
    assert verdicts[DEEPEST] == "INCONCLUSIVE"  # a tie is not "worse"


def test_verify_never_pools_two_protocols_and_keeps_the_newest_record(tmp_path):
    write_results(tmp_path, "fig6", [("plain-20", 20, "plain", 0, 40.0, 38.0)], group="a")
    write_results(tmp_path, "table6", [("plain-20", 20, "plain", 1, 30.0, 28.0)], group="b")
    verdicts, output = verify_output(tmp_path)
    assert verdicts["ResNet-20 has lower training and test error than plain-20"] == "NOT"
    stale = runs([("plain-56", 56, "plain", 0, 60.0, 58.0)]).assign(
        status="running", updated="2026-01-01T00:00:00")
    done = stale.assign(status="done", updated="2026-01-02T00:00:00")
    folder = tmp_path / "fig7" / "cpu"
    folder.mkdir(parents=True)
    pd.concat([done, stale]).to_csv(folder / "summary.csv", index=False)
    summaries = load_summaries(tmp_path, "cpu")
    assert summaries.loc[summaries["net"] == "plain-56", "status"].tolist() == ["done"]
    write_results(tmp_path, "fig1", [("plain-56", 56, "plain", 0, 60.0, 58.0)], group="a")
    verdicts, _ = verify_output(tmp_path)
    assert verdicts[PLAIN_PAIR] == "MIXED"  # plain-20 under protocols a and b


def test_figure6_panels_hold_the_lines_asked_for():
    rows = []
    for shortcut, family in (("plain", "plain"), ("A", "resnet")):
        for depth in (20, 56, 110, 1202):
            for split in ("train", "test"):
                for iteration in (100, 200):
                    rows.append((f"{family}-{depth}", depth, shortcut, 0, iteration, split, 50.0))
    curves = pd.DataFrame(rows, columns=["net", "depth", "shortcut", "seed", "iteration",
                                         "split", "error"])
    curves = curves[~((curves["shortcut"] == "plain") & (curves["depth"] >= 110))]
    curves = curves.assign(series=curves["net"])
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
    assert figure.axes[2].get_title() == "ResNet-110 and ResNet-1202"


def test_figure6_right_panel_holds_the_two_deepest_resnets_of_a_smaller_grid():
    rows = [(f"{family}-{depth}", depth, shortcut, 0, 100, split, 50.0)
            for shortcut, family in (("plain", "plain"), ("A", "resnet"))
            for depth in (20, 32, 44, 56) for split in ("train", "test")]
    curves = pd.DataFrame(rows, columns=["net", "depth", "shortcut", "seed", "iteration",
                                         "split", "error"])
    figure = plot_family_panels(curves.assign(series=curves["net"]), "fig6")
    labels = [[line.get_label() for line in axis.get_lines() if not
               line.get_label().startswith("_")] for axis in figure.axes]
    assert labels[1] == ["resnet-20", "resnet-32", "resnet-44", "resnet-56"]
    assert labels[2] == ["resnet-44", "resnet-56"]
    assert figure.axes[2].get_title() == "ResNet-44 and ResNet-56"


def test_make_verify_narrows_to_the_profile_given_and_else_reads_every_one():
    def command(*args: str) -> str:
        environment = {k: v for k, v in os.environ.items() if k != "PROFILE"}
        return subprocess.run(["make", "-n", "verify", *args], cwd=ROOT, env=environment,
                              capture_output=True, text=True, check=True).stdout

    assert "verify.py --profile paper" in command("PROFILE=paper")
    assert "--profile" not in command()
