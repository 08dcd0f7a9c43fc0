"""Run directories: named by a hash of what determines the result, holding everything a run
writes, so that a rerun finds a finished run (and skips it) or an interrupted one (and resumes).

    runs/<key>/config.yaml        the resolved config
    runs/<key>/run.json           status, net, seed, data, commit, hardware, wall time, attempts
    runs/<key>/attempt-<k>/metrics.csv   Lightning's CSVLogger, one folder per (re)start
    runs/<key>/checkpoints/last.ckpt     for resuming
    runs/<key>/model.pt           the final network weights (a plain state_dict)
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

#: The config nodes that determine a run's result.
IDENTITY_NODES = ("model", "data", "module", "trainer", "seed")
#: Keys inside them that change where or how fast a run goes, not what it computes.
NOT_IDENTITY = {
    "data": ("source", "cache_dir", "eval_batch_size", "on_device", "num_workers", "pin_memory"),
    "module": ("compile",),
    "trainer": (
        "accelerator", "devices", "num_nodes", "strategy", "enable_progress_bar",
        "enable_model_summary", "benchmark",
    ),
}


def run_identity(cfg: DictConfig, data_fingerprint: str) -> dict:
    """What determines a run's result: the config nodes above, the data by content hash."""
    selected = OmegaConf.masked_copy(cfg, list(IDENTITY_NODES))
    identity = OmegaConf.to_container(selected, resolve=True)
    for node, keys in NOT_IDENTITY.items():
        for key in keys:
            identity[node].pop(key, None)
    identity["data"]["fingerprint"] = data_fingerprint
    return identity


def run_key(cfg: DictConfig, data_fingerprint: str) -> str:
    encoded = json.dumps(run_identity(cfg, data_fingerprint), sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def run_directory(cfg: DictConfig, data_fingerprint: str) -> Path:
    return Path(cfg.paths.runs) / run_key(cfg, data_fingerprint)


@functools.cache
def git_commit() -> dict:
    """The commit of the code, and whether code or configs differ from it, read once per
    process: the code a process runs is what it imported at its start, so a sweep's later runs
    are not marked by edits made to the working tree while it ran."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False)

    head = git("rev-parse", "HEAD")
    if head.returncode:
        return {"commit": "unknown", "dirty": None}
    dirty = git("status", "--porcelain", "--", "src", "conf", "experiments").stdout.strip()
    return {"commit": head.stdout.strip(), "dirty": bool(dirty)}


def hardware() -> dict:
    """The machine a run ran on, for the record."""
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name()
    else:
        device = platform.processor() or platform.machine()
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.exists():
            names = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                     if ln.startswith("model name")]
            device = names[0] if names else device
    return {
        "accelerator": "cuda" if torch.cuda.is_available() else "cpu",
        "device": device,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "host": platform.node(),
    }


class RunRecord:
    """``run.json`` of one run directory: created at the first start, updated at each end.
    Under DDP only the first process writes (``writable``); the others keep it in memory."""

    def __init__(self, directory: Path, writable: bool = True):
        self.directory, self.writable = Path(directory), writable
        self.path = self.directory / "run.json"
        self.data: dict = json.loads(self.path.read_text()) if self.path.exists() else {}

    @property
    def status(self) -> str | None:
        return self.data.get("status")

    @property
    def attempt(self) -> int:
        """The number of the latest (re)start, from 0."""
        return len(self.data.get("attempts", [])) - 1

    def start(self, cfg: DictConfig, info: dict) -> None:
        """Record a (re)start: the config, what describes the run, and a new attempt."""
        if self.writable:
            self.directory.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(cfg, self.directory / "config.yaml", resolve=True)
        self.data.update(info, status="running")
        self.data.setdefault("attempts", []).append(
            {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **git_commit(), **hardware()}
        )
        self._started = time.perf_counter()
        self.save()

    def finish(self, status: str, iterations: int, error: str | None = None) -> None:
        attempt = self.data["attempts"][-1]
        attempt.update(
            finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            wall_seconds=round(time.perf_counter() - self._started, 1),
            status=status,
            iterations=iterations,
        )
        self.data.update(
            status=status,
            iterations=iterations,
            error=error,
            wall_seconds=round(sum(a.get("wall_seconds", 0) for a in self.data["attempts"]), 1),
        )
        self.save()

    def save(self) -> None:
        if not self.writable:
            return
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(self.data, indent=2))
        partial.replace(self.path)
