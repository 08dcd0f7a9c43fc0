"""Fused groups against one eager run (``make gpu-burst``'s first minute): for each depth, the
training images per second of one run's bare eager step (``throughput.model_step`` on the
project's batches) and of fused groups of K runs (``training.fused.FusedRuns``), all runs
counted, and each one's ratio to the eager run. Measured side by side in one process."""

from __future__ import annotations

import pandas as pd
from hydra.utils import instantiate

from resnet_repro.benchmarks.throughput import (
    DEVICE,
    compose_config,
    forever,
    images_per_second,
    make_model,
    model_step,
    our_batches,
)
from resnet_repro.training.fused import FusedRuns


def group_configs(depth: int, runs: int, source: str, overrides: list[str]) -> list:
    """``runs`` runs of one depth, plain and option-A ResNets in turn, seeds 0, 1, ..."""
    return [compose_config(depth, source, f"seed={k}",
                           f"model.shortcut={'null' if k % 2 else 'A'}", *overrides)
            for k in range(runs)]


def bench_fused(source: str, depths: list[int], sizes: list[int], seconds: float,
                overrides: list[str] = ()) -> pd.DataFrame:
    rows = []
    for depth in depths:
        cfg = group_configs(depth, 1, source, list(overrides))[0]
        datamodule = instantiate(cfg.data, seed=0)
        datamodule.setup()
        datamodule.move_to(DEVICE)
        net, optimizer = make_model(cfg)
        step = model_step(net, optimizer, forever(lambda dm=datamodule: our_batches(dm)), cfg)
        eager = images_per_second(step, warmup=3, seconds=seconds)
        rows.append({"depth": depth, "runs": 1, "way": "eager", "images_per_s": eager})
        for size in sizes:
            group = FusedRuns(group_configs(depth, size, source, list(overrides)), datamodule)
            batch = datamodule.batch_size * size

            def fused_step(group=group, batch=batch) -> int:
                group.step()
                return batch

            rows.append({"depth": depth, "runs": size, "way": "fused",
                         "images_per_s": images_per_second(fused_step, 3, seconds)})
        for row in rows:
            if row["depth"] == depth:
                row["vs_one_eager_run"] = round(row["images_per_s"] / eager, 3)
    table = pd.DataFrame(rows)
    table["images_per_s"] = table["images_per_s"].round(1)
    return table
