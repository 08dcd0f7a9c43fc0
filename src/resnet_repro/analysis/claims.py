"""The paper's CIFAR-10 claims, checked against the summaries in ``results/``.

Rule. "A is lower than B" is judged on the final errors of finished runs, the runs of one net
being the seeds of one protocol (never pooled across protocols). With nA and nB runs, means mA
and mB and sample standard deviations sA and sB, the gap mB - mA is significant where it exceeds
two standard errors, 2 * sqrt(sA²/nA + sB²/nB) (about a one-sided 98 % level for normal
errors). A side with a single run has no spread of its own: it takes the profile's noise floor,
the pooled seed-to-seed standard deviation of every net that has several seeds at that profile
(named in the output); with no such net, a one-run comparison is INCONCLUSIVE. A claim is PASS
where its gap is significant in the claimed direction, FAIL where it is significant the other
way, INCONCLUSIVE where it is inside the noise, NOT RUN where a net has no finished run.
A chain (20 > 32 > 44 > 56 > 110) is PASS where every neighbour's mean is in the claimed order
and its two ends differ significantly, FAIL where any neighbour pair or the ends are
significantly reversed: neighbouring depths may differ by less than the noise (the paper's
44 -> 56 gap is 0.2 points), which says nothing against the trend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

DEPTHS = (20, 32, 44, 56, 110)
COLUMNS = ("train_error", "test_error")
PASS, FAIL, INCONCLUSIVE, NOT_RUN, MIXED = "PASS", "FAIL", "INCONCLUSIVE", "NOT RUN", "MIXED"


@dataclass
class Verdict:
    claim: str
    result: str
    evidence: str

    def __str__(self) -> str:
        return f"{self.result:12} {self.claim}\n             {self.evidence}"


def load_summaries(results: Path, profile: str) -> pd.DataFrame:
    """Every finished run in ``results/*/<profile>/summary.csv``, each run once, by its newest
    record (a run listed as running in an older summary and as done in a newer one is done)."""
    frames = [pd.read_csv(path) for path in sorted(Path(results).glob(f"*/{profile}/summary.csv"))]
    if not frames:
        return pd.DataFrame(columns=["run", "net", "group", "status", "train_error",
                                     "test_error", "updated"])
    runs = pd.concat(frames, ignore_index=True)
    if "updated" in runs:
        runs = runs.sort_values("updated", kind="stable", na_position="first")
    runs = runs.drop_duplicates("run", keep="last")
    return runs[runs["status"] == "done"]


@dataclass
class Side:
    """One net's final errors over its seeds in one column."""
    net: str
    values: list[float]
    seeds: list[int]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n

    @property
    def std(self) -> float | None:
        if self.n < 2:
            return None
        return math.sqrt(sum((v - self.mean) ** 2 for v in self.values) / (self.n - 1))

    def __str__(self) -> str:
        spread = f" ± {self.std:.2f}" if self.n > 1 else ""
        return f"{self.net} {self.mean:.2f}{spread} (seeds {','.join(map(str, self.seeds))})"


class Evidence:
    """The finished runs of one profile, with the profile's noise floor."""

    def __init__(self, runs: pd.DataFrame):
        self.runs = runs
        self.floors = {column: noise_floor(runs, column) for column in COLUMNS}

    def protocols(self, net: str) -> int:
        return self.runs.loc[self.runs["net"] == net, "group"].nunique()

    def side(self, net: str, column: str) -> Side:
        rows = self.runs[self.runs["net"] == net].sort_values("seed")
        return Side(net, rows[column].astype(float).tolist(), rows["seed"].astype(int).tolist())

    def gap(self, low: Side, high: Side, column: str) -> tuple[float, float | None]:
        """(high.mean - low.mean, two standard errors), None where no spread is known."""
        floor = self.floors[column][0]
        spreads = [side.std if side.n > 1 else floor for side in (low, high)]
        if any(spread is None for spread in spreads):
            return high.mean - low.mean, None
        error = math.sqrt(sum(s**2 / side.n for s, side in zip(spreads, (low, high),
                                                              strict=True)))
        return high.mean - low.mean, 2 * error

    def missing(self, nets: list[str]) -> Verdict | None:
        absent = [net for net in nets if not (self.runs["net"] == net).any()]
        if absent:
            return Verdict("", NOT_RUN, f"no finished run of {', '.join(absent)}")
        mixed = [net for net in nets if self.protocols(net) > 1]
        if mixed:
            return Verdict("", MIXED, f"runs of several protocols for {', '.join(mixed)} "
                           "(never pooled): narrow results/ to one")
        return None


def noise_floor(runs: pd.DataFrame, column: str) -> tuple[float | None, str]:
    """The pooled seed-to-seed standard deviation of ``column`` over every net (one protocol)
    with several seeds: sqrt(sum (n_i - 1) s_i² / sum (n_i - 1))."""
    grouped = runs.groupby(["net", "group"], dropna=False)[column]
    sizes, variances = grouped.size(), grouped.var()
    several = sizes[sizes > 1].index
    if not len(several):
        return None, f"{column}: no net has several seeds at this profile"
    dof = (sizes[several] - 1).sum()
    pooled = math.sqrt(((sizes[several] - 1) * variances[several]).sum() / dof)
    nets = ", ".join(f"{net} ({sizes[(net, group)]} seeds)" for net, group in several)
    return pooled, f"{column} noise floor {pooled:.2f} points, the pooled std of {nets}"


def compare(evidence: Evidence, low: str, high: str, column: str, claim: str) -> Verdict:
    """Claim: ``low`` has lower ``column`` than ``high``."""
    if (absent := evidence.missing([low, high])) is not None:
        return Verdict(claim, absent.result, absent.evidence)
    a, b = evidence.side(low, column), evidence.side(high, column)
    gap, threshold = evidence.gap(a, b, column)
    result = _judge(gap, threshold)
    bound = "no spread known" if threshold is None else f"2 SE {threshold:.2f}"
    return Verdict(claim, result, f"{column}: {a} < {b}; gap {gap:.2f} ({bound})")


def _judge(gap: float, threshold: float | None) -> str:
    if threshold is None:
        return INCONCLUSIVE
    if gap > threshold:
        return PASS
    return FAIL if -gap > threshold else INCONCLUSIVE


def chain(evidence: Evidence, nets: list[str], column: str, claim: str) -> Verdict:
    """Claim: ``nets`` in order of increasing ``column`` (rule in the module docstring)."""
    if (absent := evidence.missing(nets)) is not None:
        return Verdict(claim, absent.result, absent.evidence)
    sides = [evidence.side(net, column) for net in nets]
    pairs = [evidence.gap(a, b, column) for a, b in zip(sides, sides[1:], strict=False)]
    ends = evidence.gap(sides[0], sides[-1], column)
    reversed_pair = any(_judge(gap, bound) == FAIL for gap, bound in pairs)
    if reversed_pair or _judge(*ends) == FAIL:
        result = FAIL
    elif all(gap > 0 for gap, _ in pairs) and _judge(*ends) == PASS:
        result = PASS
    else:
        result = INCONCLUSIVE
    bound = "no spread known" if ends[1] is None else f"2 SE {ends[1]:.2f}"
    evidence_text = " < ".join(map(str, sides))
    return Verdict(claim, result, f"{column}: {evidence_text}; ends differ by {ends[0]:.2f} "
                   f"({bound})")


def verify(runs: pd.DataFrame) -> tuple[list[Verdict], list[str]]:
    """Each claim's verdict, and the profile's noise floors as stated."""
    evidence = Evidence(runs)
    plain = [f"plain-{d}" for d in DEPTHS[:4]]
    verdicts = [
        compare(evidence, "plain-20", "plain-56", "train_error",
                "deeper plain nets have higher training error (20 < 56)"),
        chain(evidence, plain, "train_error",
              "plain training error rises with depth (20 < 32 < 44 < 56)"),
    ]
    for depth in DEPTHS:
        twins = (f"resnet-{depth}", f"plain-{depth}")
        train, test = (compare(evidence, *twins, column, "") for column in
                       ("train_error", "test_error"))
        results = {train.result, test.result}
        result = next((r for r in (NOT_RUN, MIXED, FAIL, INCONCLUSIVE) if r in results), PASS)
        text = train.evidence if result in (NOT_RUN, MIXED) else \
            f"{train.evidence}; {test.evidence}"
        verdicts.append(Verdict(
            f"ResNet-{depth} has lower training and test error than plain-{depth}", result, text))
    verdicts.append(chain(evidence, [f"resnet-{d}" for d in reversed(DEPTHS)], "test_error",
                          "deeper ResNets have lower test error (20 > 32 > 44 > 56 > 110)"))
    verdicts.append(compare(evidence, "resnet-110", "resnet-1202", "test_error",
                            "ResNet-1202 has higher test error than ResNet-110"))
    return verdicts, [source for _, source in evidence.floors.values()]
