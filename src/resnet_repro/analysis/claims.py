"""The paper's CIFAR-10 claims, checked against the summaries in ``results/``.

Rule. "A is lower than B" is judged on the final errors of finished runs, the runs of one net
being the seeds of one protocol (never pooled across protocols). With nA and nB runs, means mA
and mB and sample variances sA² and sB², the gap mB - mA is significant where it exceeds
t x SE, SE = sqrt(sA²/nA + sB²/nB) and t Student's critical value at a one-sided 97.5 % level
for Welch's degrees of freedom (with 3 seeds against 3, t is about 2.8; with 2 against 2, 4.3:
few seeds need a wide gap). A side with a single run has no spread of its own: it borrows the
noise floor of its own family (plain or ResNet) at this profile, the pooled seed-to-seed std of
the family's nets that have several seeds and a mean error within a factor of 2 of the side's,
with that pool's degrees of freedom; where no such net exists, the comparison is
INCONCLUSIVE, and the output says which floor was used or why none was. Where every spread is
zero (equal seeds, or values rounded alike) nothing is known of the noise: INCONCLUSIVE.
Two sides measured on the same seeds (both borrowing one floor, or one borrowing a floor that
holds the other's seeds) count those seeds' degrees of freedom once in Welch's formula.
A claim is PASS where its gap is significant in the claimed direction, FAIL where it is
significant the other way, INCONCLUSIVE where it is inside the noise, NOT RUN where a net has
no finished run. A chain (20 > 32 > 44 > 56 > 110) is judged on the depths that have finished
runs (at least two; the missing ones are named): PASS where every neighbour's mean is in the
claimed order and its two ends differ significantly, FAIL where any neighbour pair or the ends
are significantly reversed: neighbouring depths may differ by less than the noise (the
paper's 44 -> 56 gap is 0.2 points), which says nothing against the trend. A chain that would
pass with some of its nets not run is PARTIAL, naming the links that were tested.
Training error is judged on its steady value, the mean of the last 10 logging windows at the
final learning rate (``train_error_last10``): the last window alone (``train_error``) moves by
tenths of a point from one window to the next at the paper's schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pandas as pd

DEPTHS = (20, 32, 44, 56, 110)
#: The columns judged: training error at its steady value (the module docstring), test error.
TRAIN, TEST = "train_error_last10", "test_error"
PASS, FAIL, INCONCLUSIVE, NOT_RUN, MIXED = "PASS", "FAIL", "INCONCLUSIVE", "NOT RUN", "MIXED"
PARTIAL = "PARTIAL"
#: The one-sided level of each comparison.
LEVEL = 0.975
#: A one-run side borrows the spread of nets of its family within this factor of its error.
COMPARABLE = 2.0


@dataclass
class Verdict:
    claim: str
    result: str
    evidence: str

    def __str__(self) -> str:
        return f"{self.result:12} {self.claim}\n             {self.evidence}"


#: The experiments whose runs are the paper's evidence. Others (the precision comparison) train
#: the same nets under other protocols, which are never pooled with these.
CLAIM_EXPERIMENTS = ("fig1", "fig6", "fig7", "table6")


def load_summaries(results: Path, profile: str) -> pd.DataFrame:
    """Every finished run in ``results/<experiment>/<profile>/summary.csv`` of the
    ``CLAIM_EXPERIMENTS``, each run once, by its newest record (a run listed as running in an
    older summary and as done in a newer one is done)."""
    paths = [Path(results) / experiment / profile / "summary.csv"
             for experiment in CLAIM_EXPERIMENTS]
    frames = [pd.read_csv(path) for path in paths if path.exists()]
    if not frames:
        return pd.DataFrame(columns=["run", "net", "group", "status", TRAIN, TEST, "updated"])
    runs = pd.concat(frames, ignore_index=True)
    if "updated" in runs:
        runs = runs.sort_values("updated", kind="stable", na_position="first")
    runs = runs.drop_duplicates("run", keep="last").reindex(
        columns=list(dict.fromkeys([*runs.columns, TRAIN])))  # NaN in a summary without it
    return runs[runs["status"] == "done"]


@dataclass
class Side:
    """One net's final errors over its seeds in one column."""
    net: str
    values: list[float]
    seeds: list[int]
    group: str = ""

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


def family(net: str) -> str:
    return net.split("-")[0]


@dataclass
class Spread:
    """A side's variance of the mean as a sum of independent sample variances: ``parts`` maps
    each net-and-protocol whose seeds it is measured on to (its share of the variance, its
    degrees of freedom). Two sides measured on the same seeds (one borrowing the other's, or
    both the same floor) share parts, which therefore add before Welch's formula: counted
    apart, their degrees of freedom would count twice and pass gaps too easily."""
    parts: dict[str, tuple[float, float]]
    source: str

    @property
    def variance(self) -> float:
        return sum(share for share, _ in self.parts.values())


def welch_dof(spreads: list[Spread]) -> float:
    """Welch-Satterthwaite's degrees of freedom of the sum of ``spreads``, each independent
    sample variance counted once: (sum v)² / sum v²/dof over the distinct parts."""
    parts: dict[str, list[float]] = {}
    for spread in spreads:
        for key, (share, dof) in spread.parts.items():
            parts.setdefault(key, [0.0, dof])[0] += share
    total = sum(share for share, _ in parts.values())
    return total**2 / sum(share**2 / dof for share, dof in parts.values() if share > 0)


@dataclass
class Gap:
    """high - low, its standard error and critical value; ``why`` where it cannot be judged."""
    gap: float
    se: float | None = None
    critical: float | None = None
    why: str = ""

    @property
    def threshold(self) -> float | None:
        return None if self.se is None else self.critical * self.se

    def __str__(self) -> str:
        if self.se is None:
            return f"gap {self.gap:.2f} ({self.why})"
        return (f"gap {self.gap:.2f}, threshold {self.threshold:.2f} = t {self.critical:.2f} x "
                f"SE {self.se:.2f}")


class Evidence:
    """The finished runs of one profile, and the noise floors its one-run sides borrow."""

    def __init__(self, runs: pd.DataFrame):
        self.runs = runs
        self.floors_used: set[str] = set()

    def protocols(self, net: str) -> int:
        return self.runs.loc[self.runs["net"] == net, "group"].nunique()

    def side(self, net: str, column: str) -> Side:
        rows = self.runs[self.runs["net"] == net].sort_values("seed")
        return Side(net, rows[column].astype(float).tolist(), rows["seed"].astype(int).tolist(),
                    str(rows["group"].iloc[0]))

    def spread(self, side: Side, column: str) -> Spread | str:
        """The side's variance of the mean: its own seeds', or its family's noise floor at a
        comparable error level; a text saying why there is none."""
        if side.n > 1:
            return Spread({part_key(side.net, side.group): (side.std**2 / side.n, side.n - 1)},
                          f"{side.net}'s own seeds")
        parts, source = noise_floor(self.runs, column, family(side.net), side.mean)
        if parts is None:
            return source
        self.floors_used.add(source)
        return Spread(parts, source)

    def gap(self, low: Side, high: Side, column: str) -> Gap:
        spreads = [self.spread(side, column) for side in (low, high)]
        gap = high.mean - low.mean
        missing = [text for text in spreads if isinstance(text, str)]
        if missing:
            return Gap(gap, why="; ".join(missing))
        variance = sum(spread.variance for spread in spreads)
        if variance == 0:
            return Gap(gap, why="no spread measured: every seed equal")
        return Gap(gap, math.sqrt(variance), t_critical(LEVEL, welch_dof(spreads)))

    def missing(self, nets: list[str], column: str) -> Verdict | None:
        absent = [net for net in nets if not (self.runs["net"] == net).any()]
        if absent:
            return Verdict("", NOT_RUN, f"no finished run of {', '.join(absent)}")
        unmeasured = [net for net in nets
                      if self.runs.loc[self.runs["net"] == net, column].isna().any()]
        if unmeasured:
            return Verdict("", NOT_RUN, f"no {column} in the summaries of "
                           f"{', '.join(unmeasured)}: rerun their analysis")
        mixed = [net for net in nets if self.protocols(net) > 1]
        if mixed:
            return Verdict("", MIXED, f"runs of several protocols for {', '.join(mixed)} "
                           "(never pooled): narrow results/ to one")
        return None


def part_key(net: str, group: str) -> str:
    return f"{net} [{group}]"


def noise_floor(runs: pd.DataFrame, column: str, family_name: str, level: float
                ) -> tuple[dict[str, tuple[float, float]] | None, str]:
    """The pooled variance s² = sum (n_i - 1) s_i² / sum (n_i - 1) of ``column`` over the nets
    of ``family_name`` (one protocol each) with several seeds and a mean within a factor
    ``COMPARABLE`` of ``level``, as its parts (net i's share (n_i - 1) s_i² / dof, with n_i - 1
    degrees of freedom), and where it came from; (None, why) where there is no such net."""
    grouped = runs[runs["net"].map(family) == family_name].groupby(
        ["net", "group"], dropna=False)[column]
    sizes, variances, means = grouped.size(), grouped.var(), grouped.mean()
    comparable = [key for key in sizes.index if sizes[key] > 1 and
                  level / COMPARABLE <= means[key] <= level * COMPARABLE]
    if not comparable:
        return None, (f"{column}: no {family_name} net with several seeds near "
                      f"{level:.2f} (within x{COMPARABLE:g}) to borrow a noise floor from")
    dof = float(sum(sizes[key] - 1 for key in comparable))
    parts = {part_key(net, str(group)): ((sizes[(net, group)] - 1) * variances[(net, group)]
                                         / dof, float(sizes[(net, group)] - 1))
             for net, group in comparable}
    pooled = math.sqrt(sum(share for share, _ in parts.values()))
    nets = ", ".join(f"{net} ({sizes[(net, group)]} seeds)" for net, group in comparable)
    return parts, (f"{column} noise floor {pooled:.2f} points ({dof:g} degrees of "
                   f"freedom), the pooled std of {nets}")


def t_critical(level: float, dof: float) -> float:
    """Student's t quantile at ``level`` for ``dof`` (fractional, as Welch's) degrees of
    freedom, by bisection on the distribution function."""
    low, high = 0.0, 1000.0
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, dof) < level else (low, middle)
    return (low + high) / 2


def t_cdf(t: float, dof: float) -> float:
    """P(T <= t) for t >= 0: 1 - I_x(dof/2, 1/2) / 2 with x = dof / (dof + t²)."""
    return 1 - 0.5 * _incomplete_beta(dof / (dof + t * t), dof / 2, 0.5)


def _incomplete_beta(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction
    (Lentz's method; Numerical Recipes, section 6.4)."""
    if x <= 0 or x >= 1:
        return float(x >= 1)
    if x > (a + 1) / (a + b + 2):
        return 1 - _incomplete_beta(1 - x, b, a)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log(1 - x)) / a
    tiny, c, d = 1e-300, 1.0, 0.0
    value = 1.0
    for i in range(400):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2 == 0:
            numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1 + numerator * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + numerator / c
        c = c if abs(c) > tiny else tiny
        value *= c * d
        if abs(c * d - 1) < 1e-12:
            break
    return front * (value - 1)


def compare(evidence: Evidence, low: str, high: str, column: str, claim: str) -> Verdict:
    """Claim: ``low`` has lower ``column`` than ``high``."""
    if (absent := evidence.missing([low, high], column)) is not None:
        return Verdict(claim, absent.result, absent.evidence)
    a, b = evidence.side(low, column), evidence.side(high, column)
    gap = evidence.gap(a, b, column)
    return Verdict(claim, _judge(gap), f"{column}: {a} < {b}; {gap}")


def _judge(gap: Gap) -> str:
    if gap.threshold is None:
        return INCONCLUSIVE
    if gap.gap > gap.threshold:
        return PASS
    return FAIL if -gap.gap > gap.threshold else INCONCLUSIVE


def chain(evidence: Evidence, nets: list[str], column: str, claim: str) -> Verdict:
    """Claim: ``nets`` in order of increasing ``column``, judged on those that have finished
    runs (rule in the module docstring)."""
    present = [net for net in nets if (evidence.runs["net"] == net).any()]
    absent = [net for net in nets if net not in present]
    if len(present) < 2:
        return Verdict(claim, NOT_RUN, f"fewer than two of {', '.join(nets)} finished")
    if (mixed := evidence.missing(present, column)) is not None:
        return Verdict(claim, mixed.result, mixed.evidence)
    sides = [evidence.side(net, column) for net in present]
    pairs = [evidence.gap(a, b, column) for a, b in zip(sides, sides[1:], strict=False)]
    ends = evidence.gap(sides[0], sides[-1], column)
    if any(_judge(gap) == FAIL for gap in pairs) or _judge(ends) == FAIL:
        result = FAIL
    elif all(gap.gap > 0 for gap in pairs) and _judge(ends) == PASS:
        result = PARTIAL if absent else PASS
    else:
        result = INCONCLUSIVE
    links = zip(sides, sides[1:], pairs, strict=False)
    reversed_pairs = [f"{a.net} > {b.net}" for a, b, gap in links if gap.gap <= 0]
    notes = ([f"out of order: {', '.join(reversed_pairs)}"] if reversed_pairs else []) + \
        ([f"not run: {', '.join(absent)}; tested on {len(present)} of {len(nets)} nets, "
          f"links {', '.join(f'{a} < {b}' for a, b in pairwise(present))}"]
         if absent else [])
    return Verdict(claim, result, f"{column}: {' < '.join(map(str, sides))}; ends: {ends}"
                   + "".join(f"; {note}" for note in notes))


def verify(runs: pd.DataFrame) -> tuple[list[Verdict], list[str]]:
    """Each claim's verdict, and the noise floors that one-run sides borrowed."""
    evidence = Evidence(runs)
    plain = [f"plain-{d}" for d in DEPTHS[:4]]
    verdicts = [
        compare(evidence, "plain-20", "plain-56", TRAIN,
                "deeper plain nets have higher training error (20 < 56)"),
        chain(evidence, plain, TRAIN,
              "plain training error rises with depth (20 < 32 < 44 < 56)"),
    ]
    for depth in DEPTHS:
        twins = (f"resnet-{depth}", f"plain-{depth}")
        train, test = (compare(evidence, *twins, column, "") for column in
                       (TRAIN, TEST))
        results = {train.result, test.result}
        result = next((r for r in (NOT_RUN, MIXED, FAIL, INCONCLUSIVE) if r in results), PASS)
        text = train.evidence if result in (NOT_RUN, MIXED) else \
            f"{train.evidence}; {test.evidence}"
        verdicts.append(Verdict(
            f"ResNet-{depth} has lower training and test error than plain-{depth}", result, text))
    verdicts.append(chain(evidence, [f"resnet-{d}" for d in reversed(DEPTHS)], TEST,
                          "deeper ResNets have lower test error (20 > 32 > 44 > 56 > 110)"))
    verdicts.append(compare(evidence, "resnet-110", "resnet-1202", TEST,
                            "ResNet-1202 has higher test error than ResNet-110"))
    return verdicts, sorted(evidence.floors_used)
