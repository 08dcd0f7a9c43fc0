"""Where runs stand, for runs of many hours across sessions and machines: iterations done,
the last errors logged, the devices they ran on, and their speed and time left on this one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from resnet_repro.analysis.collect import curves_of
from resnet_repro.runs import Run, hardware


def attempt_speeds(attempts: list[dict]) -> list[tuple[str, int, float]]:
    """(device, iterations, wall seconds) of each ended attempt."""
    speeds, reached = [], 0
    for attempt in attempts:
        if "iterations" not in attempt:  # running, or killed without a record
            continue
        start = attempt.get("iterations_from", reached)
        speeds.append((attempt.get("device"), attempt["iterations"] - start,
                       attempt.get("wall_seconds", 0.0)))
        reached = attempt["iterations"]
    return speeds


def last_point(curves: pd.DataFrame, split: str) -> tuple[float, int] | tuple[None, None]:
    points = curves[curves["split"] == split].sort_values("iteration")
    if points.empty:
        return None, None
    return float(points["error"].iloc[-1]), int(points["iteration"].iloc[-1])


def run_status(directory: Path, device: str | None = None,
               label: tuple = (None, None, None)) -> dict:
    """One run's row; speed and time left are measured on ``device`` (this machine's);
    ``label`` (net, seed, precision) names a run not started yet."""
    run = Run.read(directory)
    curves = curves_of(run.metrics())
    logged = int(curves["iteration"].max()) if len(curves) else 0
    done = max(run.iterations or 0, logged)
    max_steps = run.max_steps
    device = device or hardware()["device"]
    here = [(n, s) for d, n, s in attempt_speeds(list(run.attempts)) if d == device and s > 0]
    speed = sum(n for n, _ in here) / sum(s for _, s in here) if here else float("nan")
    train_error, _ = last_point(curves, "train")
    test_error, tested_at = last_point(curves, "test")
    left = (max_steps - done) / speed if max_steps and speed == speed else float("nan")
    return {
        "net": run.net or label[0], "seed": label[1] if run.seed is None else run.seed,
        "status": run.status, "iterations": done, "of": max_steps,
        "train_error": train_error, "test_error": test_error, "tested_at": tested_at,
        "devices": ", ".join(dict.fromkeys(str(a.get("device")) for a in run.attempts)),
        "precision": run.precision or label[2],
        "it_per_s_here": round(speed, 2) if speed == speed else None,
        "minutes_left_here": round(left / 60, 1) if left == left else None,
        "run": run.name,
    }


def status_table(directories: list[Path], labels: list[tuple] | None = None) -> pd.DataFrame:
    device = hardware()["device"]
    labels = labels or [(None, None, None)] * len(directories)
    return pd.DataFrame([run_status(directory, device, label)
                         for directory, label in zip(directories, labels, strict=True)])
