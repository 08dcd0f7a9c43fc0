"""Where the runs of a profile stand: iterations done of max_steps, the last training and test
errors, the devices they ran on, and their speed and time left on this machine.

    python experiments/status.py profile=paper [experiment=fig1] [data.source=...]

With an experiment, its sweep's runs (those not started too); without, every run folder of
the profile.
"""

import sys
from pathlib import Path

from resnet_repro.analysis.status import status_table
from resnet_repro.config import compose_train
from resnet_repro.sweeps import net_name, sweep_configs, sweep_run_directories


def net_label(cfg) -> tuple[str, int, str, int]:
    """(the net's own name, seed, precision, max_steps) of a sweep point."""
    return net_name(cfg), cfg.seed, str(cfg.trainer.precision), cfg.trainer.max_steps


def main(argv: list[str] | None = None) -> int:
    overrides = sys.argv[1:] if argv is None else argv
    labels = None
    if any(o.startswith("experiment=") for o in overrides):
        directories = sweep_run_directories(overrides)
        labels = [net_label(cfg) for cfg in sweep_configs(overrides)]
    else:
        runs = Path(compose_train(overrides).paths.runs)
        directories = sorted(p.parent for p in runs.glob("*/run.json"))
    if not directories:
        print("no runs found for", " ".join(overrides) or "the paper profile")
        return 0
    table = status_table(directories, labels)
    print(table.to_string(index=False, na_rep="-"))
    left = table["minutes_left_here"].sum(min_count=1)
    if left == left:
        unknown = table["minutes_left_here"].isna() & (table["status"] != "done")
        print(f"\nabout {left / 60:.1f} h of training left on this machine"
              + (f", and {int(unknown.sum())} runs of no known speed" if unknown.any() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
