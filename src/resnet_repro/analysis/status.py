"""Where runs stand, for runs of many hours across sessions and machines: iterations done,
the last errors logged, the devices they ran on, and their speed and time left on this one."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from resnet_repro.bf16 import kernels
from resnet_repro.runs import Run, curves_of, hardware


def speed_setting(attempt: dict) -> tuple[str | None, str | None]:
    """What an attempt's speed depends on: its device and, in bf16, whose kernels computed it
    (``resnet_repro.bf16``; attempts recorded before ``bf16_kernels`` used torch's own)."""
    bf16_kernels = attempt.get("bf16_kernels")
    if bf16_kernels is None and attempt.get("precision") == "bf16-mixed":
        bf16_kernels = "native"
    return attempt.get("device"), bf16_kernels


def attempt_speeds(attempts: list[dict]) -> list[tuple[tuple, int, float]]:
    """(``speed_setting``, iterations, wall seconds) of each ended attempt."""
    speeds, reached = [], 0
    for attempt in attempts:
        if "iterations" not in attempt:  # running, or killed without a record
            continue
        start = attempt.get("iterations_from", reached)
        speeds.append((speed_setting(attempt), attempt["iterations"] - start,
                       attempt.get("wall_seconds", 0.0)))
        reached = attempt["iterations"]
    return speeds


def last_point(curves: pd.DataFrame, split: str) -> tuple[float, int] | tuple[None, None]:
    points = curves[curves["split"] == split].sort_values("iteration")
    if points.empty:
        return None, None
    return float(points["error"].iloc[-1]), int(points["iteration"].iloc[-1])


def run_status(directory: Path, device: str | None = None,
               label: tuple = (None, None, None, None), bf16_kernels: str = "auto") -> dict:
    """One run's row; speed and time left are measured on ``device`` (this machine's) with
    the kernels ``bf16_kernels`` picks there; ``label`` (net, seed, precision, max_steps) names a
    run not started yet."""
    run = Run.read(directory)
    curves = curves_of(run.metrics())
    logged = int(curves["iteration"].max()) if len(curves) else 0
    done = max(run.iterations or 0, logged)
    max_steps = run.max_steps or label[3]
    device = device or hardware()["device"]
    precision = run.precision or label[2]
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    setting = (device, kernels(precision, device_type, bf16_kernels))
    here = [(n, s) for d, n, s in attempt_speeds(list(run.attempts)) if d == setting and s > 0]
    speed = sum(n for n, _ in here) / sum(s for _, s in here) if here else float("nan")
    train_error, _ = last_point(curves, "train")
    test_error, tested_at = last_point(curves, "test")
    left = (max_steps - done) / speed if max_steps and speed == speed else float("nan")
    return {
        "net": run.net or label[0], "seed": label[1] if run.seed is None else run.seed,
        "status": run.status, "iterations": done, "of": max_steps,
        "train_error": train_error, "test_error": test_error, "tested_at": tested_at,
        "devices": ", ".join(dict.fromkeys(str(a.get("device")) for a in run.attempts)),
        "precision": precision,
        "it_per_s_here": round(speed, 2) if speed == speed else None,
        "minutes_left_here": round(left / 60, 1) if left == left else None,
        "run": run.name,
    }


def status_table(directories: list[Path], labels: list[tuple] | None = None,
                 bf16_kernels: str = "auto") -> pd.DataFrame:
    device = hardware()["device"]
    labels = labels or [(None, None, None, None)] * len(directories)
    return estimate_speeds(pd.DataFrame([
        run_status(directory, device, label, bf16_kernels)
        for directory, label in zip(directories, labels, strict=True)]))


def estimate_speeds(table: pd.DataFrame) -> pd.DataFrame:
    """A run with no speed measured here (not started, or running its first attempt) takes
    the speed of a run of the same depth and precision that has one: a plain net and its
    ResNet twin do the same multiply-adds. ``speed_from`` names where each speed comes from."""
    table = table.copy()
    depth = table["net"].str.rsplit("-", n=1).str[-1]
    table["speed_from"] = table["it_per_s_here"].notna().map({True: "itself", False: None})
    for index in table.index[table["it_per_s_here"].isna()]:
        alike = table[(depth == depth[index]) & (table["precision"] == table.at[index, "precision"])
                      & (table["speed_from"] == "itself")]
        if alike.empty:
            continue
        speed = float(alike["it_per_s_here"].iloc[0])
        table.at[index, "it_per_s_here"] = speed
        table.at[index, "minutes_left_here"] = round(
            (table.at[index, "of"] - table.at[index, "iterations"]) / speed / 60, 1)
        table.at[index, "speed_from"] = alike["net"].iloc[0]
    return table
