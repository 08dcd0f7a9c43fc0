"""One GPU lease's work, in one command (make gpu-burst): about a minute of benchmark (one
eager run against fused groups), then the unfinished runs of the priority list advanced as
fused groups until the deadline, then everything packed into --out for the trip back. A lease
runs the bench with --bench-only in one call and the training with --bench-seconds 0 in the
next (a call may last 10 minutes): experiments/lease.py plans them.

    python experiments/gpu_burst.py --out $OUT --minutes 8.6 profile=paper data.source=PATH

Back here, `make gpu-unpack FROM=<folder of the returned files>` puts the runs in place.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

from resnet_repro.benchmarks.fused import bench_fused
from resnet_repro.benchmarks.throughput import machine_name, save_measurement
from resnet_repro.sweeps import fixed_overrides
from resnet_repro.training.burst import (
    advance,
    data_fingerprint,
    fused_groups,
    pack,
    priority_configs,
)

STARTED = time.time()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides: profile, data.source")
    parser.add_argument("--out", type=Path, required=True, help="where the returned files go")
    parser.add_argument("--minutes", type=float, default=7.0,
                        help="wall-clock minutes for the whole command, bench included")
    parser.add_argument("--bench-seconds", type=float, default=3.0,
                        help="seconds per bench point (0: no bench)")
    parser.add_argument("--sizes", default="1,4,8,16", help="fused group sizes to bench")
    parser.add_argument("--depths", default="20,56,110", help="depths to bench")
    parser.add_argument("--most", type=int, default=16, help="the most runs in one group")
    parser.add_argument("--bench-only", action="store_true",
                        help="the bench alone (it also decodes and caches the data)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    deadline = STARTED + 60 * args.minutes
    source = next((o.split("=", 1)[1] for o in args.overrides
                   if o.startswith("data.source=")), None)
    if args.bench_seconds > 0 and source is not None:
        table = bench_fused(source, [int(d) for d in args.depths.split(",")],
                            [int(k) for k in args.sizes.split(",")], args.bench_seconds,
                            [o for o in fixed_overrides(args.overrides)
                             if not o.startswith("data.source=")])
        print(table.to_string(index=False))
        save_measurement(table, args.out / f"bench-{machine_name()}-fused", vars(args) | {
            "out": str(args.out)})
    if args.bench_only:
        return 0
    configs = priority_configs(args.overrides)
    groups = fused_groups(configs, data_fingerprint(configs[0]), args.most)
    print(f"{sum(map(len, groups))} unfinished runs in {len(groups)} fused groups; "
          f"{(deadline - time.time()) / 60:.1f} min left for them")
    touched = advance(groups, deadline - 30)  # 30 s kept for packing
    written = pack(touched, args.out, Path(configs[0].paths.runs).parent)
    size = sum(path.stat().st_size for path in written) / 2**20
    print("packed", ", ".join(path.name for path in written), f"({size:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
