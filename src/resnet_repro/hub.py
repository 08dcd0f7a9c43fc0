"""Trained nets in one line, from the runs committed in ``results/runs/``:

    net = resnet_repro.pretrained("resnet-56", profile="cpu")
    net.record["test_error"], net.record["commits"]

The run is the one the profile's own protocol names for that net and seed (the config that
``make reproduce-<experiment> PROFILE=<profile>`` trains, on the exact CIFAR-10), so no run key
is needed; a different protocol is asked for with ``overrides`` (``["trainer.precision=..."]``).
"""

from __future__ import annotations

from torch import nn

from resnet_repro.analysis.collect import final_error, hardware_of_run
from resnet_repro.config import CONF_DIR, compose_train
from resnet_repro.data.sources import OFFICIAL_CONTENT
from resnet_repro.runs import Run, curves_of, run_directory

RUNS = CONF_DIR.parent / "results" / "runs"


def pretrained(net: str, profile: str = "paper", seed: int = 0,
               overrides: list[str] = ()) -> nn.Module:
    """The finished ``net`` ("plain-20", "resnet-56", ...) of ``profile``, in evaluation mode,
    with ``.record``: its errors at the end, protocol, commit, hardware and run folder."""
    cfg = compose_train([f"profile={profile}", *_model_overrides(net), f"seed={seed}",
                         f"paths.runs={RUNS / profile}", *overrides])
    run = Run.read(run_directory(cfg, OFFICIAL_CONTENT))
    if not run.done:
        finished = ", ".join(available(profile)) or "none"
        raise LookupError(f"no finished {net} (seed {seed}) at profile {profile!r}"
                          + (f" with {list(overrides)}" if overrides else "")
                          + f"; finished at that profile: {finished}")
    model = run.load_net()
    curves = curves_of(run.metrics())
    model.record = {
        "net": run.net, "seed": run.seed, "profile": profile,
        "train_error": final_error(curves, "train", run.max_steps),
        "test_error": final_error(curves, "test", run.max_steps),
        "iterations": run.iterations, "precision": run.precision, "protocol": run.group,
        "commits": run.commits,  # every attempt's, where the run was resumed
        "hardware": hardware_of_run(run),  # every machine it trained on
        "run": str(run.folder.directory),
    }
    return model


def _model_overrides(net: str) -> list[str]:
    family, _, depth = net.partition("-")
    shortcuts = {"plain": "null", "resnet": "A"}
    if family not in shortcuts or not depth.isdigit():
        raise ValueError(f"net {net!r}: give a CIFAR-10 net as plain-<depth> or "
                         "resnet-<depth>, e.g. resnet-56")
    return [f"model.depth={depth}", f"model.shortcut={shortcuts[family]}"]


def available(profile: str) -> list[str]:
    """The finished runs of a profile, as "net (seed s)"."""
    found = []
    for record_file in sorted((RUNS / profile).glob("*/run.json")):
        run = Run.read(record_file.parent)
        if run.done and run.init is None:
            found.append(f"{run.net} (seed {run.seed})")
    return sorted(set(found))
