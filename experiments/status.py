"""Where the runs of a profile stand: iterations done of max_steps, the last training and test
errors, the devices they ran on, and their speed and time left on this machine.

    python experiments/status.py profile=paper [experiment=fig1] [data.source=...]
                                 [bf16_kernels=native|fp32]

With an experiment, its sweep's runs (those not started too); without, every run folder of
the profile. Speeds are those of the attempts that ran here with the kernels ``bf16_kernels``
picks (auto: this CPU's own bf16 kernels where it has them).
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
        configs = sweep_configs(overrides)
        labels = [net_label(cfg) for cfg in configs]
        bf16_kernels = configs[0].bf16_kernels if configs else "auto"
    else:
        cfg = compose_train(overrides)
        directories = sorted(p.parent for p in Path(cfg.paths.runs).glob("*/run.json"))
        bf16_kernels = cfg.bf16_kernels
    if not directories:
        print("no runs found for", " ".join(overrides) or "the paper profile")
        return 0
    table = status_table(directories, labels, bf16_kernels)
    print(table.to_string(index=False, na_rep="-"))
    left = table["minutes_left_here"].sum(min_count=1)
    if left == left:
        unknown = table["minutes_left_here"].isna() & (table["status"] != "done")
        print(f"\nabout {left / 60:.1f} h of training left on this machine"
              + (f", and {int(unknown.sum())} runs of no known speed" if unknown.any() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
