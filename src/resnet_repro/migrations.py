"""Re-keying recorded runs when what a run's identity covers changes: the runs keep their
results and move to the folder their identity now names; nothing is retrained.

``rekey_data``: from the data's byte hash (before) to its content hash (now), so that every
lossless copy of CIFAR-10 shares its runs (``data.sources.content_fingerprint``).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from resnet_repro.runs import RunFolder, RunRecord, group_key, run_identity, run_key


class MigrationError(RuntimeError):
    """A run folder whose recorded config does not give its own key: left as it is."""


def rekey_data(root: str | Path, fingerprints: dict[str, str]) -> dict[str, str]:
    """Move every run under ``root`` (``<root>/<profile>/<key>`` or ``<root>/<key>``) recorded
    with a data fingerprint that ``fingerprints`` maps to a new one to its new key, updating
    run.json (data fingerprint, group, the key of the run it started from). Returns
    {old key: new key}. A run is moved only if its config gives back its old key; runs that
    start from another run's weights are moved after it. Idempotent: a rerun moves nothing."""
    folders = [RunFolder(record.parent) for record in sorted(Path(root).rglob("run.json"))]
    moves = {}
    for folder in sorted(folders, key=lambda f: "init" in f.read_record()):
        record = folder.read_record()
        old = record.get("dataset", {}).get("fingerprint")
        if old not in fingerprints:
            continue
        cfg = OmegaConf.load(folder.config)
        if run_key(cfg, old) != folder.name:
            raise MigrationError(f"{folder.directory}: its config.yaml gives key "
                                 f"{run_key(cfg, old)}, not its folder's name; not moved")
        new = fingerprints[old]
        moves[folder.name] = _move(folder, cfg, record, new).name
    return moves


def _move(folder: RunFolder, cfg, record: dict, fingerprint: str) -> Path:
    target = folder.directory.parent / run_key(cfg, fingerprint)
    if target.exists():
        raise MigrationError(f"{folder.directory}: {target} exists already; not moved")
    record["dataset"]["fingerprint"] = fingerprint
    record["group"] = group_key(cfg, fingerprint)
    identity = run_identity(cfg, fingerprint)
    if "init" in identity:
        record["init"] = identity["init"]
    folder.directory.rename(target)
    moved = RunRecord(target)
    moved.data = record
    moved.save()
    return target
