"""Re-keying recorded runs when what a run's identity covers changes: the runs keep their
results and move to the folder their identity now names; nothing is retrained.

``rekey_data``: from the data's byte hash (before) to its content hash (now), so that every
lossless copy of CIFAR-10 shares its runs (``data.sources.content_fingerprint``).
``rekey_measurements``: an analysis's per-net measurements (``analysis.nets.kept_or_measured``)
to a new key of the code that measured them, nothing measured again.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from resnet_repro.runs import RunFolder, RunRecord, git_commit, key_of, run_identity


class MigrationError(RuntimeError):
    """A run folder whose recorded config does not give its own key: left as it is."""


def rekey_data(root: str | Path, fingerprints: dict[str, str]) -> dict[str, str]:
    """Move every run under ``root`` (``<root>/<profile>/<key>`` or ``<root>/<key>``) recorded
    with a data fingerprint that ``fingerprints`` maps to a new one to its new key, updating
    run.json (data fingerprint, group, the key of the run it started from). Returns
    {old key: new key}. A run is moved only if its config gives back its old key; runs that
    start from another run's weights are moved after it. A run recorded as running is left
    where it is (its process writes by path; move it once it has stopped). Idempotent: a rerun
    moves nothing."""
    folders = [RunFolder(record.parent) for record in sorted(Path(root).rglob("run.json"))]
    moves: dict[str, str] = {}
    for folder in sorted(folders, key=lambda f: "init" in f.read_record()):
        record = folder.read_record()
        old = record.get("dataset", {}).get("fingerprint")
        if old not in fingerprints or record.get("status") == "running":
            continue
        cfg = OmegaConf.load(folder.config)
        source = record.get("init", {}).get("from_run")
        if key_of(identity(cfg, old, source)) != folder.name:
            raise MigrationError(f"{folder.directory}: its config.yaml gives key "
                                 f"{key_of(identity(cfg, old, source))}, not its folder's "
                                 "name; not moved")
        new_identity = identity(cfg, fingerprints[old], moves.get(source, source))
        moves[folder.name] = _move(folder, record, new_identity).name
    return moves


def identity(cfg, fingerprint: str, source_key: str | None) -> dict:
    """A recorded run's identity from its saved config, with the key of the run it started
    from as recorded: the saved config is resolved (the warm-up gate's depth is a number, no
    longer ``${model.depth}``), so the source's key cannot be derived from it again."""
    fresh = cfg.copy()
    fresh.init = None
    result = run_identity(fresh, fingerprint)
    if source_key is not None:
        result["init"] = {**OmegaConf.to_container(cfg.init), "from_run": source_key}
    return result


def _move(folder: RunFolder, record: dict, new_identity: dict) -> Path:
    target = folder.directory.parent / key_of(new_identity)
    if target.exists():
        raise MigrationError(f"{folder.directory}: {target} exists already; not moved")
    record["dataset"]["fingerprint"] = new_identity["data"]["fingerprint"]
    record["group"] = key_of({k: v for k, v in new_identity.items() if k != "seed"})
    if "init" in new_identity:
        record["init"] = new_identity["init"]
    folder.directory.rename(target)
    moved = RunRecord(target)
    moved.data = record
    moved.save()
    return target


def rekey_measurements(per_net: str | Path, keys: dict[str, str], reason: str) -> list[str]:
    """Give each per-net record in ``per_net`` (``<run>.json`` beside its tables) kept under an
    old measuring-code key the new one that ``keys`` maps it to, where the code that measured
    changed in nothing that alters what it measured (``reason`` says why). The record keeps its
    tables, budget, machine, commit and minutes and notes the re-keying (from, reason, commit).
    Returns the runs re-keyed; idempotent."""
    moved = []
    for path in sorted(Path(per_net).glob("*.json")):
        record = json.loads(path.read_text())
        old = record.get("measuring_code")
        if old not in keys or keys[old] == old:
            continue
        record["measuring_code"] = keys[old]
        record.setdefault("rekeyed", []).append(
            {"from": old, "reason": reason, "code": git_commit()})
        path.write_text(json.dumps(record, indent=1) + "\n")
        moved.append(path.stem)
    return moved
