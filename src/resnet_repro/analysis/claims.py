"""The paper's CIFAR-10 claims, checked against the summaries in ``results/``.

A comparison "A is lower than B" passes only where B's mean exceeds A's by more than the sum
of their standard deviations over seeds (sample std; 0 for a net with a single run), so a gap
inside the seeds' spread is a FAIL, not a PASS. A claim about a net that has no finished run
is NOT RUN.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

DEPTHS = (20, 32, 44, 56, 110)


@dataclass
class Verdict:
    claim: str
    result: str  # PASS, FAIL or NOT RUN
    evidence: str

    def __str__(self) -> str:
        return f"{self.result:8} {self.claim}\n         {self.evidence}"


def load_summaries(results: Path, profile: str) -> pd.DataFrame:
    """Every finished run in ``results/*/<profile>/summary.csv``, each run once."""
    frames = [pd.read_csv(path) for path in sorted(Path(results).glob(f"*/{profile}/summary.csv"))]
    if not frames:
        return pd.DataFrame(columns=["run", "net", "status", "train_error", "test_error"])
    runs = pd.concat(frames, ignore_index=True).drop_duplicates("run")
    return runs[runs["status"] == "done"]


def net_statistics(runs: pd.DataFrame) -> pd.DataFrame:
    grouped = runs.groupby("net")[["train_error", "test_error"]]
    stats = grouped.mean().join(grouped.std().fillna(0.0), rsuffix="_std")
    return stats.join(grouped.size().rename("runs"))


def _describe(stats: pd.DataFrame, net: str, column: str) -> str:
    row = stats.loc[net]
    runs = int(row["runs"])
    spread = f" ± {row[column + '_std']:.2f}" if runs > 1 else ""
    return f"{net} {row[column]:.2f}{spread} ({runs} run{'s' if runs > 1 else ''})"


def _lower(stats: pd.DataFrame, low: str, high: str, column: str) -> bool:
    gap = stats.loc[high, column] - stats.loc[low, column]
    return bool(gap > stats.loc[low, column + "_std"] + stats.loc[high, column + "_std"])


def ordered(stats: pd.DataFrame, nets: list[str], column: str, claim: str) -> Verdict:
    """``nets`` in order of increasing error in ``column``, every neighbour by a clear gap."""
    missing = [net for net in nets if net not in stats.index]
    if missing:
        return Verdict(claim, "NOT RUN", f"no finished run of {', '.join(missing)}")
    passed = all(_lower(stats, a, b, column) for a, b in zip(nets, nets[1:], strict=False))
    evidence = " < ".join(_describe(stats, net, column) for net in nets)
    return Verdict(claim, "PASS" if passed else "FAIL", f"{column}: {evidence}")


def verify(runs: pd.DataFrame) -> list[Verdict]:
    stats = net_statistics(runs)
    plain = [f"plain-{d}" for d in DEPTHS[:4]]
    verdicts = [
        ordered(stats, ["plain-20", "plain-56"], "train_error",
                "deeper plain nets have higher training error (20 < 56)"),
        ordered(stats, plain, "train_error",
                "plain training error rises with depth (20 < 32 < 44 < 56)"),
    ]
    for depth in DEPTHS:
        pair = [f"resnet-{depth}", f"plain-{depth}"]
        train, test = (ordered(stats, pair, c, "") for c in ("train_error", "test_error"))
        result = "PASS" if train.result == test.result == "PASS" else (
            "NOT RUN" if "NOT RUN" in (train.result, test.result) else "FAIL")
        verdicts.append(Verdict(
            f"ResNet-{depth} has lower training and test error than plain-{depth}", result,
            f"{train.evidence}; {test.evidence}" if result != "NOT RUN" else train.evidence))
    verdicts.append(ordered(
        stats, [f"resnet-{d}" for d in reversed(DEPTHS)], "test_error",
        "deeper ResNets have lower test error (20 > 32 > 44 > 56 > 110)"))
    beaten = ordered(stats, ["resnet-1202", "resnet-110"], "test_error", "")
    result = {"PASS": "FAIL", "FAIL": "PASS"}.get(beaten.result, "NOT RUN")
    verdicts.append(Verdict("ResNet-1202 does not beat ResNet-110 on test error", result,
                            beaten.evidence))
    return verdicts
