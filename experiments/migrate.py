"""Re-key what was recorded when what its key covers changes; nothing is trained or measured
again, and a rerun moves nothing.

    python experiments/migrate.py --data ../shared/data/cifar10-png.tar.gz [--runs results/runs]
    python experiments/migrate.py --measurements [--results results]

``--data``: every run recorded with that copy's byte hash (or with the old key of the official
release) moves to the folder its identity, keyed by the content hash, now names.
``--measurements``: the per-net measurements of the lesion study and the loss landscape, kept
under the key of whole modules (``MEASURED_UNDER``), take the key of the code that measures
(``analysis.nets.measuring_code``).
"""

import argparse
import sys
from pathlib import Path

from resnet_repro.analysis import landscape, lesion
from resnet_repro.analysis.nets import PER_NET, measuring_code
from resnet_repro.data.sources import OFFICIAL_CONTENT, bytes_fingerprint, source_fingerprint
from resnet_repro.migrations import rekey_data, rekey_measurements

#: Each analysis's per-net measurements: the key they were kept under (a hash of the whole
#: analysis module, nets.py and the models, at commits 3e80b655be and dc901db123) and the
#: function that measures them now.
MEASURED_UNDER = {"lesion": ("1d60fa59f36c5f69", lesion.lesion_tables),
                  "landscape": ("d2be576d252255a1", landscape.landscape_tables)}
REASON = ("the key now covers the code that measures, not whole modules; since these were "
          "measured, that code changed only in nets.in_precision's bf16 branch (bebf8ef: "
          "bf16_autocast, which is torch.autocast itself on a CPU with bf16 instructions, the "
          "Intel Xeon with AMX-BF16 that measured these, and unused in fp32); the measuring "
          "function now takes its images, labels and budget by functools.partial")


def migrate_measurements(results: Path) -> list[str]:
    moved = []
    for analysis, (old, measure) in MEASURED_UNDER.items():
        for per_net in sorted((results / analysis).glob(f"*/{PER_NET}")):
            moved += [f"{per_net}/{run}" for run in rekey_measurements(
                per_net, {old: measuring_code(measure)}, REASON)]
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", default=[],
                        help="a CIFAR-10 copy the runs were trained on (repeatable)")
    parser.add_argument("--runs", type=Path, default=Path("results/runs"))
    parser.add_argument("--cache-dir", default=".cache/data")
    parser.add_argument("--measurements", action="store_true",
                        help="re-key the analyses' per-net measurements")
    parser.add_argument("--results", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    if not args.data and not args.measurements:
        parser.error("nothing to migrate: give --data PATH (runs) or --measurements")
    if args.measurements:
        moved = migrate_measurements(args.results)
        print("\n".join(moved + [f"{len(moved)} per-net measurements re-keyed"]))
    if args.data:
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
