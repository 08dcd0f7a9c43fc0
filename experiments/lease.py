"""The trip to a GPU lease and back, planned and checked here (the device's limits: what travels
with a call is the checkout, tracked and untracked-not-ignored files, plus carried paths, at most
64 MiB; a command at most 2,000 characters and 10 minutes; 8 carried paths):

    python experiments/lease.py plan     # split the data into .lease/, print the calls, check
    python experiments/lease.py hide     # before the calls: the big cpu run folders untracked
    python experiments/lease.py restore  # after them: the index as it was
    python experiments/lease.py unpack FOLDER   # the returned runs and bench into results/

The exact CIFAR-10 does not fit one call, so it travels in parts, one per call on a warm
machine (parts stay there between calls); the call with the last part joins them, checks the
archive's sha256 and runs the bench (which decodes and caches the data); one more call trains
(make gpu-burst) for as long as a call may last. The cpu profile's run folders (about 60 MB of
trained nets) are not needed there: `hide` takes them out of the index for the calls (nothing is
deleted), `restore` puts them back.
"""

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from resnet_repro.config import compose_train
from resnet_repro.training.burst import unpack

ROOT = Path(__file__).resolve().parents[1]
LEASE = ROOT / ".lease"
MIB = 2**20
#: The device's limits (/work/.library/device/README.md).
TRAVEL_BYTES, COMMAND_CHARS, CARRIED_PATHS = 64 * MIB, 2000, 8
#: Paths a lease does not need, hidden from the index while it travels.
HIDDEN = ["results/runs/cpu"]
MARGIN = 2 * MIB
#: Where .git/info/exclude holds ``HIDDEN`` meanwhile (gitignore has no trailing comments).
BLOCK = ("# lease.py hide: begin\n", "# lease.py hide: end\n")
#: Present while ``HIDDEN`` is out of the index.
HIDING = LEASE / "hiding"
#: Each device call starts a new shell: the wheels (installed in the data's call, kept in /tmp
#: while the machine is warm) and the commit the runs record.
ENV = ("export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 RESNET_REPRO_COMMIT={commit}"
       " RESNET_REPRO_DIRTY={dirty}")
BURST = "make gpu-burst PYTHON=python3 OUT=$OUT PROFILE={profile} DATA=/tmp/cifar10.tar.gz"
#: The call that completes the data: wheels installed, parts joined and checked, then the bench
#: (which decodes and caches the data for the next call).
BENCH = ("python3 -m pip install -q --no-index --no-deps --target /tmp/site .lease/wheels/*.whl"
         " && " + ENV + " && cat .lease/data/part-* > /tmp/cifar10.tar.gz"
         " && echo '{sha256}  /tmp/cifar10.tar.gz' | sha256sum -c"
         " && " + BURST + " MINUTES=3 BURST_ARGS=--bench-only")
#: The last call: training only, for as long as a call may last less the packing.
TRAIN = ENV + " && " + BURST + " MINUTES={minutes} BURST_ARGS='--bench-seconds 0'"


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout


def travelling_bytes(hidden: list[str]) -> int:
    """What travels without carried paths: tracked files outside ``hidden`` and untracked files
    that git does not ignore."""
    files = git("ls-files").splitlines() + git("ls-files", "--others",
                                                "--exclude-standard").splitlines()
    kept = [f for f in files if not any(f == h or f.startswith(h.rstrip("/") + "/")
                                        for h in hidden)]
    return sum((ROOT / f).stat().st_size for f in kept if (ROOT / f).is_file())


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() \
        else path.stat().st_size


def plan(data: Path, wheels: Path, minutes: float, profile: str) -> list[dict]:
    """Write .lease/ (the wheels, the data in parts) and the calls that carry them."""
    base = travelling_bytes(HIDDEN)
    (LEASE / "wheels").mkdir(parents=True, exist_ok=True)
    for wheel in sorted(wheels.glob("*.whl")):
        (LEASE / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
    part_bytes = TRAVEL_BYTES - base - size_of(LEASE / "wheels") - MARGIN
    if part_bytes < 8 * MIB:
        raise SystemExit(f"the checkout alone takes {base / MIB:.1f} MiB of the "
                         f"{TRAVEL_BYTES // MIB} MiB a call carries: hide more (HIDDEN)")
    payload = data.read_bytes()
    parts_dir = LEASE / "data"
    parts_dir.mkdir(parents=True, exist_ok=True)
    for old in parts_dir.glob("part-*"):
        old.unlink()
    parts = []
    for index, start in enumerate(range(0, len(payload), part_bytes)):
        parts.append(parts_dir / f"part-{index:02d}")
        parts[-1].write_bytes(payload[start:start + part_bytes])
    dirty = git("status", "--porcelain", "--", "src", "conf", "experiments").strip()
    values = {"sha256": hashlib.sha256(payload).hexdigest(), "minutes": minutes,
              "profile": profile, "commit": git("rev-parse", "HEAD").strip(),
              "dirty": int(bool(dirty))}
    calls = [{"carry": [str(p.relative_to(ROOT)) for p in
                        ([LEASE / "wheels"] if index == 0 else []) + [part]],
              "command": BENCH.format(**values) if index == len(parts) - 1
              else "ls -l .lease/data"}
             for index, part in enumerate(parts)]
    calls.append({"carry": [], "command": TRAIN.format(**values)})
    for call in calls:
        call["travels_mib"] = round((base + sum(size_of(ROOT / c) for c in call["carry"]))
                                    / MIB, 1)
    (LEASE / "plan.json").write_text(json.dumps(calls, indent=2))
    return calls


def check(calls: list[dict]) -> list[str]:
    """Every call within the device's limits; the problems found, if any."""
    problems = []
    for number, call in enumerate(calls, start=1):
        if call["travels_mib"] * MIB > TRAVEL_BYTES:
            problems.append(f"call {number} carries {call['travels_mib']} MiB")
        if len(call["command"]) > COMMAND_CHARS:
            problems.append(f"call {number}'s command has {len(call['command'])} characters")
        if len(call["carry"]) > CARRIED_PATHS:
            problems.append(f"call {number} carries {len(call['carry'])} paths")
    return problems


def exclude_file() -> Path:
    path = ROOT / git("rev-parse", "--git-path", "info/exclude").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


def hide() -> None:
    """Take ``HIDDEN`` out of the index (the files stay): never commit meanwhile."""
    exclude = exclude_file()
    if HIDING.exists():
        raise SystemExit("already hidden; `lease.py restore` first")
    git("rm", "-r", "--cached", "--quiet", *HIDDEN)
    exclude.write_text(exclude.read_text() + BLOCK[0] + "".join(f"/{h}/\n" for h in HIDDEN)
                       + BLOCK[1])
    HIDING.parent.mkdir(parents=True, exist_ok=True)
    HIDING.write_text("\n".join(HIDDEN))
    print(f"hidden from the index: {', '.join(HIDDEN)}. Do not commit before "
          "`lease.py restore`.")


def restore() -> None:
    exclude = exclude_file()
    text = exclude.read_text()
    if BLOCK[0] in text:
        before, _, rest = text.partition(BLOCK[0])
        exclude.write_text(before + rest.partition(BLOCK[1])[2])
    git("reset", "--quiet", "--", *HIDDEN)
    HIDING.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["plan", "hide", "restore", "unpack"])
    parser.add_argument("folder", nargs="?", type=Path, help="unpack: the returned files")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data"
                        / "cifar10-png.tar.gz")
    parser.add_argument("--wheels", type=Path, default=ROOT.parent / "shared" / "wheels")
    parser.add_argument("--minutes", type=float, default=8.6,
                        help="the training call's make gpu-burst (a call: 10 min; the lease: 15)")
    parser.add_argument("--profile", default="paper")
    args = parser.parse_args(argv)
    if args.action == "plan":
        calls = plan(args.data, args.wheels, args.minutes, args.profile)
        for number, call in enumerate(calls, start=1):
            print(f"call {number}: carry {call['carry']} ({call['travels_mib']} MiB)\n"
                  f"  {call['command']}")
        problems = check(calls)
        if "RESNET_REPRO_DIRTY=1" in calls[-1]["command"]:
            print("note: src/, conf/ or experiments/ differ from HEAD: commit before the "
                  "lease, so that its runs record a clean commit")
        print("\n".join(problems) or f"{len(calls)} calls, each within the device's limits")
        return 1 if problems else 0
    if args.action == "hide":
        hide()
    elif args.action == "restore":
        restore()
    else:
        if args.folder is None:
            parser.error("unpack needs the folder of the returned files")
        runs = Path(compose_train([]).paths.runs).parent  # results/runs: one folder a profile
        print("\n".join(unpack(args.folder, runs if runs.is_absolute() else ROOT / runs)))
        for bench in sorted(args.folder.glob("bench-*")):  # the lease's bench: results/bench/
            target = ROOT / "results" / "bench" / bench.name.removeprefix("bench-")
            target.write_bytes(bench.read_bytes())
            print(f"{target}: the lease's bench")
    return 0


if __name__ == "__main__":
    sys.exit(main())
