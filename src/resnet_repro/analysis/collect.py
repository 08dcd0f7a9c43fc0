"""Reading run directories into two tables: the curves, and one summary row per run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from resnet_repro.runs import SPLITS, Run, curves_of

#: Metrics logged once, by the final tests (ImageNet's 10-crop and multi-scale tests):
#: summary column -> metric.
FINAL_TESTS = {"top1_10crop": "val_10crop/err", "top5_10crop": "val_10crop/err5",
               "top1_multiscale": "val_multiscale/err", "top5_multiscale": "val_multiscale/err5"}
CURVE_COLUMNS = ["series", "net", "group", "depth", "shortcut", "seed", "iteration", "split",
                 "error"]


def final_tests_of(attempts: list[pd.DataFrame]) -> dict[str, float]:
    """The final tests' metrics (``FINAL_TESTS``), from the latest attempt that logged them."""
    found = {}
    for metrics in attempts:
        for column, metric in FINAL_TESTS.items():
            if metric in metrics and metrics[metric].notna().any():
                found[column] = float(metrics[metric].dropna().iloc[-1])
    return {column: found.get(column, float("nan")) for column in FINAL_TESTS}


def _describe(run: Run) -> dict:
    return {"net": run.net, "group": run.group, "depth": run.depth, "shortcut": run.family,
            "seed": run.seed}


def hardware_of(attempt: dict) -> str | None:
    if "device" not in attempt:
        return None
    return (f"{attempt['device']} ({attempt['accelerator']}, {attempt['cpu_count']} CPUs, "
            f"torch {attempt['torch']})")


def hardware_of_run(run: Run) -> str | None:
    """Every machine the run trained on, in the order of its attempts."""
    return "; ".join(dict.fromkeys(filter(None, map(hardware_of, run.attempts)))) or None


def fp32_kernel_iterations(run: Run) -> int:
    """How many of the run's iterations ran bf16 autocast through fp32 kernels
    (``resnet_repro.bf16``, on a CPU without bf16 instructions), over its attempts."""
    return sum(attempt.get("iterations", 0) - attempt.get("iterations_from", 0)
               for attempt in run.attempts if attempt.get("precision") == "bf16-mixed"
               and attempt.get("bf16_kernels") == "fp32")


def final_error(curves: pd.DataFrame, split: str, max_steps: int | None = None) -> float:
    """The error at the run's last iteration; NaN where ``max_steps`` is given and the last
    logged point is not at it (an unfinished run, or one whose last evaluation is missing):
    a final error is never taken at another iteration."""
    points = curves[curves["split"] == split].sort_values("iteration")
    if not len(points) or (max_steps is not None and points["iteration"].iloc[-1] != max_steps):
        return float("nan")
    return float(points["error"].iloc[-1])


#: How many of the last logging windows the steady training error averages.
STEADY_WINDOWS = 10


def steady_training_error(attempts: list[pd.DataFrame], max_steps: int | None) -> float:
    """The mean training error of the last ``STEADY_WINDOWS`` logging windows at the final
    learning rate (fewer where fewer ran at it), over all attempts; NaN where the last window
    is not at ``max_steps``. At the paper's schedule one window's error moves by tenths of a
    point from one window to the next: a claim on training error needs a steadier value."""
    frames = [metrics.assign(attempt=k) for k, metrics in enumerate(attempts)
              if {"train/err", "lr"} <= set(metrics)]
    if not frames:
        return float("nan")
    windows = pd.concat(frames).dropna(subset=["train/err"])
    windows = windows.assign(iteration=windows["step"].astype(int) + 1).sort_values("attempt")
    windows = windows.drop_duplicates("iteration", keep="last").sort_values("iteration")
    if not len(windows) or (max_steps is not None and windows["iteration"].iloc[-1] != max_steps):
        return float("nan")
    final_rate = windows["lr"].iloc[-1]
    at_final_rate = windows[(windows["lr"] - final_rate).abs() <= 1e-6 * final_rate]
    return float(at_final_rate["train/err"].iloc[-STEADY_WINDOWS:].mean())


def missing_windows(run: Run, curves: pd.DataFrame) -> str:
    """The training windows absent from a finished run's curve (the spacing taken as its most
    common), each with the attempt that stopped on it where one did: before commit e5ad669 a
    budget stop on a window's last iteration lost that window. Empty where none is missing."""
    windows = curves.loc[curves["split"] == "train", "iteration"].sort_values()
    if not run.done or len(windows) < 3:
        return ""
    spacing = int(windows.diff().mode().iloc[0])
    present = set(windows)
    missing = [i for i in range(int(windows.iloc[0]), int(windows.iloc[-1]), spacing)
               if i not in present]
    stops = {attempt.get("iterations"): k + 1 for k, attempt in enumerate(run.attempts)}
    return "; ".join(f"{i}" + (f" (attempt {stops[i]} stopped there)" if i in stops else "")
                     for i in missing)


def summarize(runs: list[Run]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(curves, summary) of ``runs``; a run not started yet is listed in the summary with
    status ``missing``, and only finished runs have curves. Final errors are those at the
    run's ``max_steps``."""
    all_curves, rows = [], []
    for run in runs:
        metrics = run.metrics()
        curves = curves_of(metrics)
        attempt = run.last_attempt
        rows.append({
            **_describe(run),
            "profile": run.profile,
            "precision": run.precision,
            "fp32_kernel_iterations": fp32_kernel_iterations(run),
            "dataset": Path(run.data_source or "").name,
            "dataset_sha256": run.data_fingerprint,
            "iterations": run.iterations,
            "max_steps": run.max_steps,
            "params": run.params,
            **{f"{split}_error": final_error(curves, split, run.max_steps)
               for split in SPLITS.values()},
            "train_error_last10": steady_training_error(metrics, run.max_steps),
            "missing_windows": missing_windows(run, curves),
            **final_tests_of(metrics),
            "wall_seconds": run.wall_seconds,
            "commit": " ".join(run.commits) or None,  # a run resumed across commits: each
            "dirty": run.dirty,
            "hardware": hardware_of_run(run),
            "status": run.status,
            "updated": attempt.get("finished") or attempt.get("started"),
            "run": run.name,
        })
        if run.done:  # an unfinished run is in no figure and no mean: the README names it
            all_curves.append(curves.assign(**_describe(run)))
    curves = pd.concat(all_curves, ignore_index=True) if all_curves else pd.DataFrame()
    summary = pd.DataFrame(rows)
    summary.insert(0, "series", series_labels(summary))
    if not curves.empty:
        series = dict(zip(zip(summary["net"], summary["group"], strict=True), summary["series"],
                          strict=True))
        keys = zip(curves["net"], curves["group"], strict=True)
        curves["series"] = [series[key] for key in keys]
    return curves.reindex(columns=CURVE_COLUMNS), summary


def series_labels(runs: pd.DataFrame) -> list[str]:
    """Each run's series: the runs of one protocol (``group``: the run identity without the
    seed), the only runs ever aggregated together. Labelled by the net's name, with the
    protocol's key where one net was run under several protocols."""
    protocols = runs.groupby("net", dropna=False)["group"].transform("nunique")
    return [net if count <= 1 else f"{net} [{str(group)[:7]}]"
            for net, group, count in zip(runs["net"], runs["group"], protocols, strict=True)]
