"""bf16 autocast against fp32: does mixed precision change what the runs show?

The paper trained in fp32; bf16 autocast (fp32 master weights) trains 1.5-1.7x as fast on this
project's AMD EPYC CPUs (make bench) and about 2.2x on an Intel Xeon with AMX. The rule that
decides the paper-profile runs on a CPU: bf16 is used only if, for every net, the mean final
training and test errors of its bf16 seeds agree with its fp32 seeds' (the difference within
two standard errors, sqrt(s1²/n1 + s2²/n2) from each side's own seeds), and the degradation
gap (plain-56 minus plain-20) agrees likewise; otherwise fp32. A sanity check that would catch
a real failure (a plain net that diverges, a gap that moves), not a proof of equality.

At the paper's schedule, checked at convergence, the rule written down before its fp32 run
finished: one fp32 run agrees with bf16 where it lies inside the 95 % prediction interval of
bf16's seeds for a new run of the same protocol, mean ± t(0.975, n - 1) · s · sqrt(1 + 1/n),
for the final test error and the steady training error (the mean of the last 10 windows); a
run outside it says bf16 shifts the result, by the distance given.

Added at 30,100 of that run's 64,000 iterations, before it finished: three seeds can agree by
chance more closely than one run can be measured (bf16's plain-20 seeds' steady training errors,
1.190, 1.193 and 1.190 %, against a spread of about 0.1 point between one window and the next).
So the single run's steady training error is given with its own standard error (its last 10
windows' standard deviation over sqrt(10)), and a run outside the interval but within two of
those of the seeds' mean is said to be so: the interval cannot tell that shift from noise.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from resnet_repro.analysis.claims import Side, t_critical
from resnet_repro.analysis.collect import STEADY_WINDOWS
from resnet_repro.analysis.context import Context
from resnet_repro.analysis.nets import save_csv, write_readme
from resnet_repro.analysis.plots import draw_net, finish_axis, plt, save_figure, series_in_order

PRECISIONS = ("32-true", "bf16-mixed")
COLUMNS = {"train_error_last10": "training (last 10 windows)", "test_error": "test"}
#: The summary column that holds a run's standard error of its own steady training error.
OWN_SE = {"train_error_last10": "train_error_last10_se"}
#: The level of the prediction interval for a single run (two-sided).
PREDICTION_LEVEL = 0.95
GAP = ("plain-20", "plain-56")


def sides(done: pd.DataFrame, net: str, column: str) -> list[Side]:
    """The net's final errors over its seeds, fp32 then bf16."""
    result = []
    for precision in PRECISIONS:
        rows = done[(done["net"] == net) & (done["precision"] == precision)].sort_values("seed")
        result.append(Side(f"{net} {precision}", rows[column].tolist(),
                           rows["seed"].astype(int).tolist()))
    return result


def agreement(difference: float, variances: list[float], counts: list[int]) -> dict:
    """The difference beside two standard errors; agreement where it is within them."""
    two_se = 2 * math.sqrt(sum(v / n for v, n in zip(variances, counts, strict=True)))
    return {"difference": round(difference, 2), "two_se": round(two_se, 2),
            "agree": abs(difference) <= two_se}


def compare(done: pd.DataFrame) -> pd.DataFrame:
    """One row per net and error: fp32 and bf16 mean ± std over seeds, their difference."""
    rows = []
    for net in sorted(done["net"].unique(), key=lambda n: (n.split("-")[0], int(n.split("-")[1]))):
        for column, name in COLUMNS.items():
            fp32, bf16 = sides(done, net, column)
            if min(fp32.n, bf16.n) < 2:
                continue
            rows.append({"net": net, "error": name, "fp32": str(fp32), "bf16": str(bf16),
                         **agreement(bf16.mean - fp32.mean, [fp32.std**2, bf16.std**2],
                                     [fp32.n, bf16.n])})
    return pd.DataFrame(rows)


def prediction(single: Side, seeds: Side) -> dict:
    """Whether ``single`` (one run) lies inside the prediction interval of ``seeds`` for a new
    run: mean ± t · s · sqrt(1 + 1/n), t Student's two-sided ``PREDICTION_LEVEL`` quantile."""
    t = t_critical(1 - (1 - PREDICTION_LEVEL) / 2, seeds.n - 1)
    half_width = t * seeds.std * math.sqrt(1 + 1 / seeds.n)
    difference = single.mean - seeds.mean
    return {"difference": round(difference, 2), "half_width": round(half_width, 2),
            "agree": abs(difference) <= half_width}


def steady_error_se(curves: pd.DataFrame, summary: pd.DataFrame) -> list[float]:
    """Each run's standard error of its steady training error, from the spread of its last
    ``STEADY_WINDOWS`` training windows (the same windows the steady error averages at 64,000
    iterations, all at the final rate), in the order of ``summary``'s rows."""
    keys = ["net", "group", "seed"]
    train = curves[curves["split"] == "train"].sort_values("iteration")
    se = train.groupby(keys).tail(STEADY_WINDOWS).groupby(keys)["error"].sem()
    return [se.get(key, float("nan")) for key in
            zip(summary["net"], summary["group"], summary["seed"], strict=True)]


def own_two_se(done: pd.DataFrame, net: str, precision: str, column: str) -> float:
    """Twice the single run's standard error of its own ``column`` (NaN where not measured)."""
    se_column = OWN_SE.get(column)
    if se_column not in done:
        return float("nan")
    rows = done[(done["net"] == net) & (done["precision"] == precision)]
    return round(2 * float(rows[se_column].iloc[0]), 2)


def predict_single_runs(done: pd.DataFrame) -> pd.DataFrame:
    """One row per net and error where one precision has a single run and the other several:
    the single run against the others' prediction interval, with its own noise where known."""
    rows = []
    for net in sorted(done["net"].unique()):
        for column, name in COLUMNS.items():
            fp32, bf16 = sides(done, net, column)
            for (single, seeds), precision in zip(((fp32, bf16), (bf16, fp32)), PRECISIONS,
                                                  strict=True):
                if single.n == 1 and seeds.n >= 2:
                    rows.append({"net": net, "error": name, "single": str(single),
                                 "seeds": str(seeds), **prediction(single, seeds),
                                 "own_two_se": own_two_se(done, net, precision, column)})
    return pd.DataFrame(rows)


def compare_gaps(done: pd.DataFrame) -> pd.DataFrame:
    """The plain-56 minus plain-20 gap at each precision, and whether the two agree."""
    rows = []
    for column, name in COLUMNS.items():
        (low32, low16), (high32, high16) = (sides(done, net, column) for net in GAP)
        four = (low32, low16, high32, high16)
        if min(side.n for side in four) < 2:
            continue
        fp32_gap, bf16_gap = high32.mean - low32.mean, high16.mean - low16.mean
        rows.append({"error": name, "fp32_gap": round(fp32_gap, 2),
                     "bf16_gap": round(bf16_gap, 2),
                     **agreement(bf16_gap - fp32_gap, [s.std**2 for s in four],
                                 [s.n for s in four])})
    return pd.DataFrame(rows)


def plot(done: pd.DataFrame, title: str):
    """Each seed's final training and test error per net, fp32 beside bf16."""
    nets = sorted(done["net"].unique(), key=lambda n: (n.split("-")[0], int(n.split("-")[1])))
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, (column, name) in zip(axes, COLUMNS.items(), strict=True):
        for offset, precision in zip((-0.12, 0.12), PRECISIONS, strict=True):
            rows = done[done["precision"] == precision]
            x = [nets.index(net) + offset for net in rows["net"]]
            axis.scatter(x, rows[column], label=precision, s=18)
        axis.set_xticks(range(len(nets)), nets)
        axis.set_title(f"final {name} error")
        axis.set_ylabel("error (%)")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_curves(curves: pd.DataFrame, title: str):
    """Training (thin) and test (bold) error curves of each net at each precision: the mean
    over its seeds, their range shaded; fp32 solid, bf16 dashed."""
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for series in series_in_order(curves):
        points = curves[curves["series"] == series]
        precision = "fp32" if "32" in str(points["precision"].iloc[0]) else "bf16"
        style = {"linestyle": "-" if precision == "fp32" else "--"}
        label = f"{points['net'].iloc[0]} {precision} ({points['seed'].nunique()} seed"
        label += "s)" if points["seed"].nunique() > 1 else ")"
        draw_net(axis, curves, series, "train", linewidth=0.6, **style)
        draw_net(axis, curves, series, "test", linewidth=1.8, label=label, **style)
    finish_axis(axis, None, "error (%): training thin, test bold")
    axis.set_yscale("log")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def run(context: Context) -> dict[str, Path]:
    curves, summary = context.tables
    done = summary[summary["status"] == "done"]
    done = done.assign(**{OWN_SE["train_error_last10"]: steady_error_se(curves, done)})
    nets, gaps, single = compare(done), compare_gaps(done), predict_single_runs(done)
    out = context.out_dir
    written = {"comparison": save_csv(nets, out / "comparison.csv"),
               "gaps": save_csv(gaps, out / "gap.csv"),
               "prediction": save_csv(single, out / "prediction.csv"),
               "summary": save_csv(summary, out / "summary.csv")}
    figures = {"precision": plot(done, context.title("bf16 autocast against fp32"))}
    if not single.empty:
        precisions = summary.set_index(["net", "group"])["precision"].to_dict()
        figures["curves"] = plot_curves(curves.assign(precision=[
            precisions[key] for key in zip(curves["net"], curves["group"], strict=True)]),
            context.title("bf16 against fp32 through training"))
    for name, figure in figures.items():
        written[name] = save_figure(figure, out / name)[0]
        plt.close(figure)
    written["readme"] = write_readme(
        context, context.title("Precision: bf16 autocast against fp32"), context.finished,
        measured(nets, gaps, single), decision(nets, gaps, single),
        [f"{name}.png" for name in figures])
    return written


def measured(nets: pd.DataFrame, gaps: pd.DataFrame, single: pd.DataFrame) -> list[str]:
    lines = [paragraph.replace("\n", " ") for paragraph in __doc__.split("\n\n")[1:]]
    lines = [line for paragraph in lines for line in (paragraph, "")]
    if not nets.empty:
        lines += ["Final errors (%) at the last iteration, mean ± std over seeds:", "",
                  "| net | error | fp32 | bf16 | bf16 - fp32 | 2 SE | agree |",
                  "|---|---|---|---|---:|---:|---|"]
        lines += [f"| {r.net} | {r.error} | {r.fp32} | {r.bf16} | {r.difference:+.2f} | "
                  f"{r.two_se:.2f} | {'yes' if r.agree else 'NO'} |" for r in nets.itertuples()]
    if not gaps.empty:
        lines += ["", f"The degradation gap, {GAP[1]} minus {GAP[0]} (points):", "",
                  "| error | fp32 gap | bf16 gap | difference | 2 SE | agree |",
                  "|---|---:|---:|---:|---:|---|"]
        lines += [f"| {r.error} | {r.fp32_gap:.2f} | {r.bf16_gap:.2f} | {r.difference:+.2f} | "
                  f"{r.two_se:.2f} | {'yes' if r.agree else 'NO'} |" for r in gaps.itertuples()]
    if not single.empty:
        lines += ["", "One run against the other precision's seeds (final errors, %; the 95 % "
                  "prediction interval's half-width; two standard errors of the run's own "
                  "steady training error, from its last 10 windows):", "",
                  "| net | error | one run | seeds | difference | half-width | inside | "
                  "run's own 2 SE |", "|---|---|---|---|---:|---:|---|---:|"]
        lines += [f"| {r.net} | {r.error} | {r.single} | {r.seeds} | {r.difference:+.2f} | "
                  f"{r.half_width:.2f} | {'yes' if r.agree else 'NO'} | "
                  f"{'-' if math.isnan(r.own_two_se) else f'{r.own_two_se:.2f}'} |"
                  for r in single.itertuples()]
    return lines


def within_own_noise(single: pd.DataFrame) -> str:
    """A sentence for the runs outside the interval but within two of their own standard
    errors of the seeds' mean, or nothing."""
    noisy = [f"{r.net} ({r.error}: {r.difference:+.2f} against its own 2 SE {r.own_two_se:.2f})"
             for r in single.itertuples() if not r.agree and abs(r.difference) <= r.own_two_se]
    if not noisy:
        return ""
    return (f" But for {', '.join(noisy)} the difference lies within the run's own noise: the "
            "seeds agree more closely than one run's steady error can be measured, so the "
            "interval cannot tell that shift from noise.")


def decision(nets: pd.DataFrame, gaps: pd.DataFrame, single: pd.DataFrame) -> list[str]:
    if not single.empty:
        outside = [f"{r.net} ({r.error}: {r.difference:+.2f} points, interval ± "
                   f"{r.half_width:.2f})" for r in single.itertuples() if not r.agree]
        if outside:
            return [f"The single run lies outside the other precision's prediction interval "
                    f"for {', '.join(outside)}: bf16 shifts that result by about the "
                    "difference given, which the README's faithfulness lines must say."
                    + within_own_noise(single)]
        return ["The single run lies inside the other precision's 95 % prediction interval "
                f"for {', '.join(sorted(set(single['net'])))}, training and test error alike: "
                "at convergence bf16 changes these nets' final errors by less than seed noise."]
    if nets.empty or gaps.empty:
        return ["No decision: a net or the gap lacks two seeds at one of the precisions, and "
                "no single run has seeds of the other precision to be set against."]
    disagreeing = [f"{r.net} ({r.error})" for r in nets.itertuples() if not r.agree]
    disagreeing += [f"the gap ({r.error})" for r in gaps.itertuples() if not r.agree]
    if disagreeing:
        return [f"bf16 and fp32 disagree for {', '.join(disagreeing)}: the paper-profile runs "
                "on a CPU train in fp32."]
    return [f"bf16 and fp32 agree for every net ({', '.join(nets['net'].unique())}), training "
            "and test error alike, and on the degradation gap: the paper-profile runs on a CPU "
            "train with bf16 autocast (fp32 master weights), twins alike."]
