"""Measure training and data throughput side by side; write results/bench/<machine>.csv, and
the speed settings (precision, compilation) to results/bench/<machine>-settings.csv.

    python experiments/bench.py --data ../shared/data/cifar10-png.tar.gz
"""

import argparse
import sys
from pathlib import Path

from resnet_repro.benchmarks.throughput import (
    DEFAULT_SETTINGS,
    DEVICE,
    NETS,
    SETTINGS,
    machine_name,
    run_bench,
    run_settings_bench,
    save_measurement,
)
from resnet_repro.bf16 import kernels
from resnet_repro.runs import git_commit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="official", help="CIFAR-10 source, as data.source")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per measure")
    parser.add_argument("--workers", type=int, default=2, help="torchvision DataLoader workers")
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS),
                        choices=list(SETTINGS),
                        help="the speed settings measured, the first the others' reference")
    parser.add_argument("--only", choices=["pipelines", "settings"],
                        help="measure one of the two tables (default: both)")
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)
    git_commit()  # read now (it is cached): the code measured is the code at the start
    settings = {"data": args.data, "seconds_per_measure": args.seconds}
    if args.only != "settings":
        table = run_bench(args.data, args.seconds, args.workers, tuple(args.nets))
        report(table, args.out / machine_name(), {**settings, "torchvision_workers": args.workers})
    if args.only != "pipelines":
        table = run_settings_bench(args.data, args.seconds, tuple(args.nets), tuple(args.settings))
        report(table, args.out / f"{machine_name()}-settings",
               {**settings, "settings": {name: SETTINGS[name] for name in args.settings},
                "bf16_kernels_of_bf16": kernels("bf16-mixed", DEVICE.type)})
    return 0


def report(table, stem: Path, settings: dict) -> None:
    print(table.to_string(index=False))
    written = save_measurement(table, stem, settings)
    print("wrote", " and ".join(str(path) for path in written))


if __name__ == "__main__":
    sys.exit(main())
