"""What the recipes of sweeps share (``analysis.recipes``): writing
``results/<experiment>/<profile>/`` (curves.csv, summary.csv, the recipe's figure and tables,
README.md) and the README's account of the runs and what their final errors show."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from resnet_repro.analysis.context import Context, partial_grid_note
from resnet_repro.analysis.paper import FIGURE6_FINAL, PAPER_ITERATIONS
from resnet_repro.analysis.plots import save_figure
from resnet_repro.analysis.tables import Table
from resnet_repro.runs import PLAIN

JPEG_NOTE = (
    "The data is the lossy JPEG re-encoding of CIFAR-10 (../shared/data/cifar10-jpeg.tar.gz, "
    "quality 75, subsampled colour), not the official pixels: nets trained on the real images "
    "err 17-19 % on its test split instead of 6.6-8.3 %. Its numbers cannot be compared with "
    "the paper's; it is meant for quick tests."
)
PNG_NOTE = (
    "The data is the exact CIFAR-10 (../shared/data/cifar10-png.tar.gz: the official pixels as "
    "lossless PNG, official train/test split)."
)


def write_results(context: Context, figure: Figure | None = None, tables: list[Table] = (),
                  sections: list[str] = (), frames: dict[str, pd.DataFrame] | None = None,
                  ) -> dict[str, Path]:
    """What a sweep's recipe writes: curves.csv, summary.csv, each of ``tables`` (<name>.csv and
    <name>.md), any further ``frames`` (<name>.csv), ``figure`` as <experiment>.png and .pdf,
    and a README with the tables, the recipe's own ``sections`` and the figure."""
    out_dir, experiment = context.out_dir, context.experiment
    curves, summary = context.tables
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = {"curves": curves, "summary": summary, **(frames or {})}
    written = {}
    for name, frame in frames.items():
        written[name] = out_dir / f"{name}.csv"
        frame.to_csv(written[name], index=False)
    extra = []
    for table in tables:
        built = table.build(summary)
        markdown = table.markdown(built)
        written[f"{table.name}_csv"] = out_dir / f"{table.name}.csv"
        written[f"{table.name}_md"] = out_dir / f"{table.name}.md"
        built.to_csv(written[f"{table.name}_csv"], index=False)
        written[f"{table.name}_md"].write_text(markdown)
        extra += [f"## {table.title}", "", markdown]
    extra += list(sections)
    if figure is not None:
        written["png"], written["pdf"] = save_figure(figure, out_dir / experiment)
        extra.append(f"![{experiment}]({experiment}.png)")
    written["readme"] = out_dir / "README.md"
    written["readme"].write_text(readme(experiment, context.profile, summary, context.command,
                                        extra, context.protocol, context.left_out))
    return written


def heading(context: Context) -> str:
    """The title of a sweep's figure: experiment, data set and profile."""
    return f"{context.experiment}: {context.dataset_title}, profile {context.profile}"


def readme(
    experiment: str, profile: str, summary: pd.DataFrame, command: str, extra: list[str] = (),
    protocol: list[str] = (), left_out: list[str] = (),
) -> str:
    """What was run (with ``protocol``, the profile's description, and the nets of the
    experiment's grid ``left_out``), the final errors, what they show, then ``extra`` (tables,
    figure)."""
    done = summary[summary["status"] == "done"]
    lines = [
        f"# {experiment}, profile `{profile}`",
        "",
        f"Written by the analysis from the run directories named in summary.csv (column "
        f"`run`){_newest_record(done)}. Redo with:",
        "",
        f"    {command}",
        "",
        "## What was run",
        "",
        *_provenance(summary),
        *partial_grid_note(left_out),
        *([f"- Profile `{profile}`, as its config (conf/protocol/) describes it:", "",
           *(f"  > {line}" if line else "  >" for line in protocol)] if protocol else []),
        "",
        "## Final errors (%)",
        "",
        *_error_definitions(summary),
        "",
        _table(done),
        "",
        "## What it shows",
        "",
        *_findings(done, _eval_column(summary)),
        "",
        *extra,
        "",
    ]
    return "\n".join(lines)


def _newest_record(summary: pd.DataFrame) -> str:
    """When the newest of the runs was last recorded: the README's date, which a redraw of the
    same runs leaves as it was."""
    dates = summary["updated"].dropna() if "updated" in summary else []
    return f", whose newest record is of {str(dates.max())[:10]}" if len(dates) else ""


def _provenance(summary: pd.DataFrame) -> list[str]:
    done = summary[summary["status"] == "done"]
    total_minutes = done["wall_seconds"].sum() / 60
    lines = [
        "- Runs: "
        + ", ".join(f"{r.net} (seed {r.seed:.0f}, {r.status})" for r in summary.itertuples())
        + ".",
        *_unfinished(summary),
        *_missing_windows(done),
        f"- Iterations: {', '.join(str(int(i)) for i in done['iterations'].dropna().unique())} "
        f"(the paper: {PAPER_ITERATIONS}).",
        f"- Data: {', '.join(done['dataset'].dropna().unique())} (content sha256 "
        f"{', '.join(str(s)[:16] for s in done['dataset_sha256'].dropna().unique())}...).",
        f"- Hardware: {', '.join(_each(done['hardware'], '; '))}.",
        f"- Precision: {_precisions(done)}{_through_fp32_kernels(done)}.",
        f"- Code: commit {', '.join(c[:10] for c in _each(done['commit'], ' '))}"
        + _dirty_note(done) + ".",
        "- Wall time: "
        + ", ".join(f"{r.net} seed {r.seed:.0f} {r.wall_seconds / 60:.1f} min" for r in done.dropna(
            subset=["wall_seconds"]).itertuples())
        + f"; {total_minutes:.1f} min of training in all.",
    ]
    if done["dataset"].str.contains("jpeg", case=False).any():
        lines.append(f"- {JPEG_NOTE}")
    if done["dataset"].str.contains("png", case=False).any():
        lines.append(f"- {PNG_NOTE}")
    return lines


def _missing_windows(done: pd.DataFrame) -> list[str]:
    """A line per finished run whose training curve lacks windows, and why where known."""
    if "missing_windows" not in done:
        return []
    return [f"- {r.net} seed {r.seed:.0f}'s training curve lacks the logging window ending at "
            f"iteration {r.missing_windows}: a budget stop on a window's last iteration lost "
            "that window's training error until commit e5ad669 (the weights and every test "
            "point are as uninterrupted; the run stays as it is)."
            for r in done.itertuples() if isinstance(r.missing_windows, str)
            and r.missing_windows]


def _unfinished(summary: pd.DataFrame) -> list[str]:
    """The line naming the runs not finished, which no figure, table or mean holds."""
    unfinished = summary[summary["status"] != "done"]
    lengths = unfinished.get("max_steps", pd.Series(float("nan"), index=unfinished.index))
    names = []
    for run, length in zip(unfinished.itertuples(), lengths, strict=True):
        if run.status == "missing":
            names.append(f"{run.net} seed {run.seed:.0f} (not started)")
            continue
        of = "" if pd.isna(length) else f" of {length:,.0f}"
        recorded = getattr(run, "updated", None)
        names.append(f"{run.net} seed {run.seed:.0f} ({run.iterations:,.0f}{of} iterations"
                     + (f", recorded {str(recorded)[:10]})" if recorded else ")"))
    if not names:
        return []
    return [f"- Not finished, so in no figure, table or mean: {', '.join(names)}."]


def _each(column: pd.Series, separator: str) -> list[str]:
    """The distinct values of a summary column whose cells may hold several (a run resumed
    on other commits or machines), in order."""
    return list(dict.fromkeys(value for cell in column.dropna()
                              for value in str(cell).split(separator)))


#: How each ``trainer.precision`` reads in a README.
PRECISION_NAMES = {"32-true": "fp32 (as the paper)",
                   "bf16-mixed": "bf16 autocast with fp32 master weights (the paper: fp32)"}


def _precisions(summary: pd.DataFrame) -> str:
    """The precision of the runs (fp32 for runs recorded before precision was recorded)."""
    values = summary["precision"].fillna("32-true") if "precision" in summary else \
        pd.Series(["32-true"])
    return ", ".join(PRECISION_NAMES.get(v, v) for v in values.unique())


def _through_fp32_kernels(summary: pd.DataFrame) -> str:
    """Which runs took part of their bf16 iterations through fp32 kernels, and how many."""
    if "fp32_kernel_iterations" not in summary:
        return ""
    runs = summary[summary["fp32_kernel_iterations"].fillna(0) > 0]
    if runs.empty:
        return ""
    return ("; on CPUs without bf16 instructions bf16 ran through fp32 kernels on bf16-rounded "
            "operands (`resnet_repro.bf16`: torch's bf16 arithmetic, only the order of sums "
            "differs), for " + ", ".join(
                f"{r.net} seed {r.seed:.0f}'s {r.fp32_kernel_iterations:,.0f} of "
                f"{r.iterations:,.0f} iterations" for r in runs.itertuples()))


def _dirty_note(summary: pd.DataFrame) -> str:
    dirty = summary[summary["dirty"].fillna(False).astype(bool)]["net"].tolist()
    if not dirty:
        return ""
    return (f"; for {', '.join(dirty)} the working tree's src/, conf/ or experiments/ differed "
            "from that commit when the run was recorded (run.json: dirty)")


def _is_imagenet(summary: pd.DataFrame) -> bool:
    """ImageNet runs evaluate on a validation set only (CIFAR-10 runs on the test set)."""
    return bool("val_error" in summary and summary["test_error"].isna().all()
                and summary["val_error"].notna().any())


def _eval_column(summary: pd.DataFrame) -> str:
    return "val_error" if _is_imagenet(summary) else "test_error"


def _error_definitions(summary: pd.DataFrame) -> list[str]:
    if _is_imagenet(summary):
        return ["Training error is the mean over the last logging window of training "
                "mini-batches; validation error is of the center crops of the whole validation "
                "set at the last iteration; the 10-crop errors come from the test after the last "
                "iteration (never a best epoch)."]
    return ["Training error: the last logging window's (the mean over its mini-batches) and, "
            "steadier, the mean of the last 10 windows at the final learning rate (`last 10`, "
            "on which `make verify` judges training error); test error: the whole 10,000-image "
            "test set at the last iteration (never a best epoch)."]


def _table(summary: pd.DataFrame) -> str:
    if _is_imagenet(summary):
        rows = ["| net | params | iterations | training error | val. error (center crop) | "
                "10-crop top-1 | 10-crop top-5 |", "|---|---:|---:|---:|---:|---:|---:|"]
        for run in summary.sort_values(["shortcut", "depth"]).itertuples():
            rows.append(f"| {run.net} | {run.params:,} | {run.iterations} | "
                        f"{run.train_error:.1f} | {run.val_error:.1f} | {run.top1_10crop:.1f} | "
                        f"{run.top5_10crop:.1f} |")
        return "\n".join(rows)
    at_paper_length = (summary["iterations"] == PAPER_ITERATIONS).any()
    rows = [
        "| net | seed | params | iterations | training error | training, last 10 | test error "
        "| paper at 64k (train / test) |" + (" ours - paper (train / test) |"
                                              if at_paper_length else ""),
        "|---|---:|---:|---:|---:|---:|---:|---|" + ("---|" if at_paper_length else ""),
    ]
    for run in summary.sort_values(["shortcut", "depth", "seed"]).itertuples():
        paper = FIGURE6_FINAL.get(run.net)
        row = (f"| {run.net} | {run.seed:.0f} | {run.params:,.0f} | {run.iterations:.0f} | "
               f"{run.train_error:.2f} | {run.train_error_last10:.2f} | {run.test_error:.2f} | "
               f"{f'{paper[0]} / {paper[1]}' if paper else '-'} |")
        if at_paper_length:
            row += f" {_difference(run, paper)} |"
        rows.append(row)
    return "\n".join(rows) + _means_table(summary)


def _difference(run, paper: tuple[float, float] | None) -> str:
    """Our final errors (training: the last 10 windows) minus the paper's, in points, for a
    finished run of the paper's length only (a shorter run's distance from the paper is its
    schedule's, not a finding)."""
    if paper is None or run.status != "done" or run.iterations != PAPER_ITERATIONS:
        return "-"
    return f"{run.train_error_last10 - paper[0]:+.2f} / {run.test_error - paper[1]:+.2f}"


def _means_table(summary: pd.DataFrame) -> str:
    """Where a net has several finished seeds: its mean ± std (n) and, at the paper's length,
    the mean minus the paper's one run, ± its standard error s·sqrt(1/n + 1): the paper's run
    has a seed's noise too, taken to be ours."""
    done = summary[summary["status"] == "done"]
    columns = {"train_error_last10": "training, last 10", "test_error": "test error"}
    grouped = done.groupby(["shortcut", "depth", "series"], sort=True)
    if done.empty or grouped.size().max() < 2:
        return ""
    rows = ["", "", "Mean ± std over seeds (n):", "",
            "| net | n | " + " | ".join(columns.values()) + " | paper at 64k (train / test) | "
            "ours - paper ± SE (train / test) |", "|---|---:|---:|---:|---|---|"]
    for (_, _, series), runs in grouped:
        n = len(runs)
        stats = {c: (runs[c].mean(), runs[c].std()) for c in columns}
        paper = FIGURE6_FINAL.get(runs["net"].iloc[0])
        cells = [f"{m:.2f} ± {sd:.2f}" if n > 1 else f"{m:.2f}" for m, sd in stats.values()]
        difference = "-"
        if paper and (runs["iterations"] == PAPER_ITERATIONS).all():
            difference = " / ".join(
                f"{m - ref:+.2f}" + (f" ± {sd * (1 / n + 1) ** 0.5:.2f}" if n > 1 else "")
                for (m, sd), ref in zip(stats.values(), paper, strict=True))
        rows.append(f"| {series} | {n} | {' | '.join(cells)} | "
                    f"{f'{paper[0]} / {paper[1]}' if paper else '-'} | {difference} |")
    return "\n".join(rows)


def _trend(errors: pd.Series) -> str:
    steps = errors.diff().dropna()
    change = f"{abs(errors.iloc[-1] - errors.iloc[0]):.1f} points from depth " \
             f"{errors.index[0]} to {errors.index[-1]}"
    if (steps > 0).all():
        return f"rises with every step in depth ({change})"
    if (steps < 0).all():
        return f"falls with every step in depth ({change})"
    return "does not move monotonically with depth"


def _papers_trend(family: pd.DataFrame) -> str:
    """The paper's final errors for the same nets (Figure 6 at 64k), when every run of the
    family went the paper's length, and how many seeds ours are: the size of the depth trend
    set beside the paper's."""
    nets = family.groupby("depth")["net"].first()
    if len(nets) < 2 or not (family["iterations"] == PAPER_ITERATIONS).all() \
            or not nets.isin(FIGURE6_FINAL.keys()).all():
        return ""
    train, test = zip(*(FIGURE6_FINAL[net] for net in nets), strict=True)
    seeds = family.groupby("depth")["seed"].nunique()
    counts = f"{seeds.iloc[0]}" if seeds.nunique() == 1 else ", ".join(map(str, seeds))
    spread = (", so the seed-to-seed spread is not measured" if seeds.max() == 1 else
              "; a net of one seed has no measured spread" if seeds.min() == 1 else "")
    return (f" The paper at 64k: training error {', '.join(map(str, train))} %, test error "
            f"{', '.join(map(str, test))} % (training {abs(train[-1] - train[0]):.1f}, test "
            f"{abs(test[-1] - test[0]):.1f} points from depth {nets.index[0]} to "
            f"{nets.index[-1]}; ours: {counts} seed{'s' if seeds.max() > 1 else ''} per net, "
            f"means{spread}).")


def _one_protocol_per_net(done: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The runs of nets run under one protocol only, and a line naming any left out: runs of
    different protocols are never pooled into one mean."""
    protocols = done.groupby(["shortcut", "depth"])["series"].transform("nunique")
    mixed = sorted(done.loc[protocols > 1, "series"].unique())
    note = [f"- Left out of these findings, run under several protocols (see summary.csv): "
            f"{', '.join(mixed)}."] if mixed else []
    return done[protocols <= 1], note


def _findings(done: pd.DataFrame, eval_column: str = "test_error") -> list[str]:
    """What the final errors show: the depth ordering within each family of nets (plain,
    each shortcut option), and each residual net against its plain twin. Means over seeds."""
    eval_name = "test" if eval_column == "test_error" else "validation"
    done, lines = _one_protocol_per_net(done)
    train_column = "train_error_last10" if eval_column == "test_error" else "train_error"
    means = done.groupby(["shortcut", "depth"])[[train_column, eval_column]].mean().rename(
        columns={train_column: "train_error"})
    for shortcut, family in means.groupby(level="shortcut"):
        family = family.droplevel("shortcut")
        if len(family) < 2:
            continue
        kind = "plain nets" if shortcut == PLAIN else f"ResNets (option {shortcut})"
        train, evaluated = family["train_error"], family[eval_column]
        trend = _trend(train)
        degradation = shortcut == PLAIN and trend.startswith("rises")
        lines.append(
            f"- {kind}, depth {', '.join(map(str, family.index))}: final training error "
            f"{', '.join(f'{e:.1f}' for e in train)} %, {eval_name} error "
            f"{', '.join(f'{e:.1f}' for e in evaluated)} %. Training error {trend}"
            + (": the degradation problem." if degradation else ".")
            + _papers_trend(done[done["shortcut"] == shortcut])
        )
    for (shortcut, depth), residual in means.drop(PLAIN, level="shortcut",
                                                  errors="ignore").iterrows():
        if (PLAIN, depth) not in means.index:
            continue
        plain = means.loc[(PLAIN, depth)]
        lower = (residual < plain).all()
        lines.append(
            f"- depth {depth}: ResNet (option {shortcut}) {residual.train_error:.1f} % training, "
            f"{residual[eval_column]:.1f} % {eval_name} error against plain "
            f"{plain.train_error:.1f} % and {plain[eval_column]:.1f} %: "
            + ("the shortcuts lower both." if lower else "the shortcuts do not lower both.")
        )
    return lines or ["- Fewer than two finished runs to compare."]
