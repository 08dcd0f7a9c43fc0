"""Measure training and data throughput side by side; write results/bench/<machine>.csv.

    python experiments/bench.py --data ../shared/data/cifar10-jpeg.tar.gz
"""

import argparse
import sys
from pathlib import Path

from resnet_repro.bench import machine_name, run_bench, save_measurement


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="official", help="CIFAR-10 source, as data.source")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per measure")
    parser.add_argument("--workers", type=int, default=2, help="torchvision DataLoader workers")
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)
    table = run_bench(args.data, args.seconds, args.workers)
    print(table.to_string(index=False))
    written = save_measurement(table, args.out / machine_name(), {
        "data": args.data, "seconds_per_measure": args.seconds,
        "torchvision_workers": args.workers,
    })
    print("wrote", " and ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
