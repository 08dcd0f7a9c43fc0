"""Measure the ImageNet training loader alone; write results/bench/imagenet-loader-<machine>.csv.

    python experiments/bench_loader.py --data /path/to/imagenet --workers 2 8
    python experiments/bench_loader.py --synthetic 2000      # JPEGs of ImageNet's typical size
"""

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from resnet_repro.benchmarks.loader import loader_throughput, write_synthetic_folder
from resnet_repro.benchmarks.throughput import machine_name, save_measurement


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="an ImageNet-style ImageFolder")
    source.add_argument("--synthetic", type=int, help="write this many synthetic JPEGs")
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.data or write_synthetic_folder(Path(scratch) / "synthetic", args.synthetic)
        rows = [loader_throughput(folder, workers, args.batch_size, args.seconds,
                                  Path(scratch) / "cache") for workers in args.workers]
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    written = save_measurement(table, args.out / f"imagenet-loader-{machine_name()}", {
        "data": str(args.data) if args.data else f"{args.synthetic} synthetic 500x375 JPEGs",
        "seconds_per_measure": args.seconds,
    })
    print("wrote", " and ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
