"""A GPU lease's work (``make gpu-burst``): advance the unfinished runs of a priority list as
fused groups (``fused_launch.train_fused``) until a deadline, then pack the run folders it
touched into at most a few files for the trip back; ``unpack`` puts them into this checkout's
run folders, where the ordinary loop continues any unfinished one.

Priority: Figure 1 and its residual twins first, then the rest of Figure 6 (without
ResNet-1202, which alone would take the lease), Table 6's seeds, Figure 7's 110-layer nets;
within each experiment seed 0 of every net before any net's seed 1, so each curve has a run
before any has a second.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tarfile
import time
from itertools import groupby
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from resnet_repro.runs import Run, run_directory, run_key
from resnet_repro.sweeps import sweep_configs
from resnet_repro.training.fused_launch import train_fused
from resnet_repro.training.launch import checkpoint_step

log = logging.getLogger(__name__)

#: (experiment, extra overrides) in the order a lease advances them.
PRIORITY = [("fig1", ["model.shortcut=null,A"]), ("fig6", []), ("table6", []), ("fig7", [])]
#: Left to a lease of its own: ResNet-1202 alone is about 60 ResNet-20s of work.
SKIPPED_DEPTHS = (1202,)
#: The trip back (the device's limits: 8 files of 16 MiB, 64 MiB in all): the runs in at most
#: 5 parts, beside the manifest and the bench's table and record.
PACK_FILES, PACK_FILE_BYTES, PACK_TOTAL_BYTES = 5, 16 * 2**20, 60 * 2**20


def priority_configs(overrides: list[str]) -> list[DictConfig]:
    """Every run of the priority list once, in order (``overrides``: profile, data source)."""
    seen, configs = set(), []
    for experiment, extra in PRIORITY:
        sweep = sweep_configs([f"experiment={experiment}", *overrides, *extra])
        for cfg in sorted(sweep, key=lambda cfg: cfg.seed):  # stable: sweep order per seed
            key = run_key(cfg, "")
            if key not in seen and cfg.model.depth not in SKIPPED_DEPTHS:
                seen.add(key)
                configs.append(cfg)
    return configs


def fused_groups(configs: list[DictConfig], fingerprint: str, most: int) -> list[list]:
    """The unfinished runs grouped by what a group shares (depth, starting iteration), each
    group at most ``most`` runs, ordered by the priority of their first run."""
    pending = []
    for order, cfg in enumerate(configs):
        folder = run_directory(cfg, fingerprint)
        if Run.read(folder).status != "done":
            start = checkpoint_step(folder / "checkpoints" / "last.ckpt")
            pending.append((order, int(cfg.model.depth), start, cfg))
    pending.sort(key=lambda item: (item[1], item[2], item[0]))
    groups = []
    for _, members in groupby(pending, key=lambda item: (item[1], item[2])):
        members = list(members)
        groups += [members[i:i + most] for i in range(0, len(members), most)]
    groups.sort(key=lambda group: group[0][0])
    return [[cfg for *_, cfg in group] for group in groups]


def advance(groups: list[list[DictConfig]], deadline: float) -> list[Path]:
    """Train the groups in order, each given an equal share of the time left; returns the run
    folders touched. A group that fails is logged and the others go on."""
    touched = []
    for index, group in enumerate(groups):
        left = deadline - time.time()
        if left <= 0:
            break
        share = time.time() + left / (len(groups) - index)
        try:
            records = train_fused(group, deadline=share)
        except Exception:  # one group's failure never takes the lease down
            log.exception("fused group of %d (depth %s) failed", len(group),
                          group[0].model.depth)
            continue
        touched += [record.directory for record in records]
    return touched


def pack(folders: list[Path], out: Path, root: Path) -> list[Path]:
    """The run folders (named relative to ``root``, the folder of the profiles' run folders)
    as one tar split into parts that fit the trip back, and a manifest (each run's folder,
    status and iterations)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for folder in folders:
            archive.add(folder, arcname=str(Path(folder).relative_to(root)))
    data = buffer.getvalue()
    if len(data) > min(PACK_TOTAL_BYTES, PACK_FILES * PACK_FILE_BYTES):
        raise ValueError(f"the runs take {len(data) / 2**20:.1f} MiB packed, more than the trip "
                         "back carries: advance fewer runs in one lease")
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for index in range(0, len(data), PACK_FILE_BYTES):
        parts.append(out / f"runs.tar.part{index // PACK_FILE_BYTES}")
        parts[-1].write_bytes(data[index:index + PACK_FILE_BYTES])
    manifest = [{"run": str(Path(f).relative_to(root)), "status": Run.read(f).status,
                 "iterations": Run.read(f).iterations} for f in folders]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return [*parts, out / "manifest.json"]


def unpack(parts_dir: Path, root: Path) -> list[str]:
    """Put a lease's run folders into ``root`` (the folder of the profiles' run folders): one
    replaces the local one where the lease took it further and the local one is not training
    now; returns what was done, one line per run."""
    parts = sorted(Path(parts_dir).glob("runs.tar.part*"), key=lambda p: int(p.suffix[5:]))
    if not parts:  # a call that only benchmarked
        return []
    data = b"".join(part.read_bytes() for part in parts)
    staging = Path(root) / ".unpacking"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(staging, filter="data")
    lines = []
    for record in sorted(staging.rglob("run.json")):
        relative = record.parent.relative_to(staging)
        lines.append(_replace(record.parent, Path(root) / relative))
    shutil.rmtree(staging, ignore_errors=True)
    return lines


def _replace(leased: Path, local: Path) -> str:
    new, old = Run.read(leased), Run.read(local)
    if old.status == "running":
        return f"kept {local}: it is training here now (the lease's copy is dropped)"
    if old.status != "missing" and (old.iterations or 0) >= (new.iterations or 0):
        return f"kept {local}: it is at iteration {old.iterations}, the lease's at " \
               f"{new.iterations}"
    shutil.rmtree(local, ignore_errors=True)
    local.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(leased), local)
    return f"{local}: {new.net} seed {new.seed} now at iteration {new.iterations} ({new.status})"


def data_fingerprint(cfg: DictConfig) -> str:
    return instantiate(cfg.data, seed=cfg.seed).fingerprint
