"""Re-key the recorded CIFAR-10 runs from their data copy's byte hash to its content hash.

    python experiments/migrate.py --data ../shared/data/cifar10-png.tar.gz [--runs results/runs]

Every run recorded with that copy's byte hash (or with the old key of the official release)
moves to the folder its identity now names; nothing is retrained. Rerunning it moves nothing.
"""

import argparse
import sys
from pathlib import Path

from resnet_repro.data.sources import OFFICIAL_CONTENT, bytes_fingerprint, source_fingerprint
from resnet_repro.migrations import rekey_data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", default=[],
                        help="a CIFAR-10 copy the runs were trained on (repeatable)")
    parser.add_argument("--runs", type=Path, default=Path("results/runs"))
    parser.add_argument("--cache-dir", default=".cache/data")
    args = parser.parse_args(argv)
    fingerprints = {bytes_fingerprint("official"): OFFICIAL_CONTENT}
    for source in args.data:
        fingerprints[bytes_fingerprint(source)] = source_fingerprint(source, args.cache_dir)
    moves = rekey_data(args.runs, fingerprints)
    for old, new in moves.items():
        print(f"{old} -> {new}")
    print(f"{len(moves)} runs re-keyed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
