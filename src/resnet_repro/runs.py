"""The run folder: the one place that knows its layout, names it by the run's identity, and
reads and writes it. Training writes through it; analysis and benchmarks read through it.

    <runs>/<key>/config.yaml                the resolved config
    <runs>/<key>/run.json                   status, net, seed, data, commit, hardware, attempts
    <runs>/<key>/attempt-<k>/metrics.csv    Lightning's CSVLogger, one folder per (re)start
    <runs>/<key>/checkpoints/last.ckpt      for resuming; removed once the run is done
    <runs>/<key>/model.pt                   the final network weights (a plain state_dict)

``<key>`` is a hash of the run's identity: what determines its result. ``group`` in run.json
is the same hash without the seed: runs of one group are seeds of one protocol, and only they
are ever aggregated together. A run that starts from another run's weights (``init``) has
that run's key in its identity.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from resnet_repro.bf16 import bf16_flags, cpuinfo

#: The logged evaluation metrics of a curve, and the split each one is on.
SPLITS = {"train/err": "train", "val/err": "val", "test/err": "test"}
#: How the analysis names the family of a net without shortcuts (``model.shortcut: null``).
PLAIN = "plain"
#: The config nodes that determine a run's result.
IDENTITY_NODES = ("model", "data", "module", "trainer", "seed")
#: Keys inside them that change where or how fast a run goes, not what it computes.
NOT_IDENTITY = {
    "data": ("source", "cache_dir", "eval_batch_size", "on_device", "num_workers", "pin_memory"),
    "module": ("compile", "grad_norm_every"),
    "trainer": (
        "accelerator", "devices", "num_nodes", "strategy", "enable_progress_bar",
        "enable_model_summary", "benchmark",
    ),
}


def process_count(trainer: DictConfig) -> int:
    """Devices x nodes: BatchNorm's statistics are per device, so this changes the result."""
    devices = trainer.get("devices", 1)
    if isinstance(devices, (list, tuple)) or OmegaConf.is_list(devices):
        per_node = len(devices)
    else:
        per_node = int(devices) if str(devices).isdigit() else 1  # "auto", -1: one here
    return per_node * int(trainer.get("num_nodes", 1) or 1)


def run_identity(cfg: DictConfig, data_fingerprint: str) -> dict:
    """What determines a run's result: the config nodes above, the data by content hash, and
    the number of processes where it is not 1 (so single-device keys never change)."""
    selected = OmegaConf.masked_copy(cfg, list(IDENTITY_NODES))
    identity = OmegaConf.to_container(selected, resolve=True)
    for node, keys in NOT_IDENTITY.items():
        for key in keys:
            identity[node].pop(key, None)
    identity["data"]["fingerprint"] = data_fingerprint
    processes = process_count(cfg.trainer)
    if processes != 1:
        identity["trainer"]["processes"] = processes
    source = init_source(cfg)
    if source is not None:  # the run whose weights this one starts from
        identity["init"] = {**OmegaConf.to_container(cfg.init), "from_run": run_key(
            source, data_fingerprint)}
    return identity


def init_source(cfg: DictConfig) -> DictConfig | None:
    """The config of the finished run whose trained weights this run starts from, deepened by
    identity blocks (``init: {from_depth: 20}``: the same run at depth 20), or None for a run
    from a fresh initialization."""
    init = cfg.get("init")
    if init is None:
        return None
    source = cfg.copy()
    with open_dict(source):
        source.model.depth, source.init = init.from_depth, None
    return source


def key_of(identity: dict) -> str:
    """The key of a run (or, without its seed, of a group) from its identity."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def run_key(cfg: DictConfig, data_fingerprint: str) -> str:
    return key_of(run_identity(cfg, data_fingerprint))


def group_key(cfg: DictConfig, data_fingerprint: str) -> str:
    """The run's identity without its seed: the protocol that its seeds share."""
    identity = run_identity(cfg, data_fingerprint)
    identity.pop("seed")
    return key_of(identity)


def run_directory(cfg: DictConfig, data_fingerprint: str) -> Path:
    return Path(cfg.paths.runs) / run_key(cfg, data_fingerprint)


class RunFolder:
    """Paths inside one run folder, and reading what a run wrote."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.record = self.directory / "run.json"
        self.config = self.directory / "config.yaml"
        self.checkpoints = self.directory / "checkpoints"
        self.last_checkpoint = self.checkpoints / "last.ckpt"
        self.weights = self.directory / "model.pt"

    @property
    def name(self) -> str:
        return self.directory.name

    def attempt(self, index: int) -> Path:
        """The folder of the ``index``-th (re)start: CSVLogger empties a reused one."""
        return self.directory / f"attempt-{index}"

    def remove_checkpoints(self) -> None:
        """Once a run is done: its final weights stay, its checkpoints go."""
        shutil.rmtree(self.checkpoints, ignore_errors=True)

    def precision(self) -> str | None:
        """The run's ``trainer.precision`` (32-true: fp32), from its config."""
        if not self.config.exists():
            return None
        return str(OmegaConf.select(OmegaConf.load(self.config), "trainer.precision",
                                    default="32-true"))

    def read_record(self) -> dict:
        return json.loads(self.record.read_text()) if self.record.exists() else {}

    def read_metrics(self) -> list[pd.DataFrame]:
        """Each attempt's metrics.csv, in the order of the attempts."""
        paths = sorted(self.directory.glob("attempt-*/metrics.csv"),
                       key=lambda p: int(p.parent.name.split("-")[1]))
        return [pd.read_csv(path) for path in paths]

    def load_net(self) -> torch.nn.Module:
        """The network of a finished run, from its config and final weights, in evaluation
        mode; no trainer needed."""
        config = OmegaConf.load(self.config)
        net = instantiate(config.model)
        net.load_state_dict(torch.load(self.weights, map_location="cpu"))
        return net.eval()


def family(shortcut: str | None) -> str:
    """A net's family: ``PLAIN``, or its shortcut option ("A", "B", "C")."""
    return PLAIN if shortcut is None else shortcut


@dataclass(frozen=True)
class Run:
    """What one run folder holds, read once and typed: how the analysis sees a run. A folder
    that no run has written yet reads as status ``missing``."""

    folder: RunFolder
    status: str
    net: str | None
    group: str | None
    depth: int | None
    family: str | None
    seed: int | None
    profile: str | None
    precision: str | None
    iterations: int | None
    max_steps: int | None
    params: int | None
    data_source: str | None
    data_fingerprint: str | None
    wall_seconds: float | None
    init: dict | None
    attempts: tuple[dict, ...]

    @classmethod
    def read(cls, directory: str | os.PathLike) -> Run:
        folder = RunFolder(directory)
        record = folder.read_record()
        model, data = record.get("model") or {}, record.get("dataset") or {}
        return cls(
            folder=folder, status=record.get("status", "missing"), net=record.get("net"),
            group=record.get("group"), depth=model.get("depth"),
            family=family(model.get("shortcut")) if model else None, seed=record.get("seed"),
            profile=record.get("profile"), precision=folder.precision(),
            iterations=record.get("iterations"), max_steps=record.get("max_steps"),
            params=record.get("params"), data_source=data.get("source"),
            data_fingerprint=data.get("fingerprint"), wall_seconds=record.get("wall_seconds"),
            init=record.get("init"), attempts=tuple(record.get("attempts") or ()),
        )

    @property
    def done(self) -> bool:
        return self.status == "done"

    @property
    def last_attempt(self) -> dict:
        """The latest (re)start's record (commit, machine, ...); empty for a missing run."""
        return self.attempts[-1] if self.attempts else {}

    @property
    def commits(self) -> list[str]:
        """Every commit the run trained under, in the order of its attempts."""
        return list(dict.fromkeys(a["commit"] for a in self.attempts if a.get("commit")))

    @property
    def dirty(self) -> bool:
        """Whether any attempt ran code that differed from its commit."""
        return any(a.get("dirty") for a in self.attempts)

    @property
    def name(self) -> str:
        return self.folder.name

    def metrics(self) -> list[pd.DataFrame]:
        return self.folder.read_metrics()

    def load_net(self) -> torch.nn.Module:
        return self.folder.load_net()


def read_runs(directories: list[Path]) -> list[Run]:
    return [Run.read(directory) for directory in directories]


@functools.cache
def git_commit() -> dict:
    """The commit of the code, and whether code or configs differ from it, read once per
    process: the code a process runs is what it imported at its start, so a sweep's later runs
    are not marked by edits made to the working tree while it ran."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False)

    head = git("rev-parse", "HEAD")
    if head.returncode:  # a copy without .git (a GPU lease): the commit it was copied from
        if "RESNET_REPRO_COMMIT" in os.environ:
            return {"commit": os.environ["RESNET_REPRO_COMMIT"],
                    "dirty": os.environ.get("RESNET_REPRO_DIRTY") == "1"}
        return {"commit": "unknown", "dirty": None}
    dirty = git("status", "--porcelain", "--", "src", "conf", "experiments").stdout.strip()
    return {"commit": head.stdout.strip(), "dirty": bool(dirty)}


def cpu_description(cpuinfo_text: str, capability: str) -> str:
    """The CPU's model name, the vector instructions torch uses on it (``capability``) and its
    native bf16 instructions: CPUs of one model name can differ many times over in bf16 speed
    (README, "Speed settings"), so a run's record and ``make status`` tell them apart."""
    names = [line.split(":", 1)[1].strip() for line in cpuinfo_text.splitlines()
             if line.startswith("model name")]
    name = names[0] if names else platform.processor() or platform.machine()
    return f"{name} [{', '.join([capability, *bf16_flags(cpuinfo_text)])}]"


def hardware() -> dict:
    """The machine a run ran on, for the record."""
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name()
    else:
        device = cpu_description(cpuinfo(), torch.backends.cpu.get_cpu_capability())
    return {
        "accelerator": "cuda" if torch.cuda.is_available() else "cpu",
        "device": device,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "host": platform.node(),
    }


class RunRecord:
    """``run.json`` of one run folder: created at the first start, updated at each end.
    Under DDP only the first process writes (``writable``); the others keep it in memory."""

    def __init__(self, directory: str | os.PathLike, writable: bool = True):
        self.folder, self.writable = RunFolder(directory), writable
        self.directory = self.folder.directory
        self.data: dict = self.folder.read_record()

    @property
    def status(self) -> str | None:
        return self.data.get("status")

    @property
    def attempt(self) -> int:
        """The number of the latest (re)start, from 0."""
        return len(self.data.get("attempts", [])) - 1

    def start(self, cfg: DictConfig, info: dict, attempt: dict | None = None) -> None:
        """Record a (re)start: the config, what describes the run, and a new attempt (its
        commit and machine, and ``attempt``: its starting iteration and speed settings)."""
        if self.writable:
            self.directory.mkdir(parents=True, exist_ok=True)
            OmegaConf.save(cfg, self.folder.config, resolve=True)
        self.data.update(info, status="running")
        self.data.setdefault("attempts", []).append(
            {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **git_commit(), **hardware(),
             **(attempt or {})}
        )
        self._started = time.perf_counter()
        self.save()

    def update(self, **fields) -> None:
        """Record facts learned during the run (the iteration the warm-up gate opened)."""
        self.data.update(fields)
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

    def save_weights(self, net: torch.nn.Module) -> None:
        if self.writable:
            torch.save(net.state_dict(), self.folder.weights)

    def save(self) -> None:
        if not self.writable:
            return
        partial = self.folder.record.with_suffix(".tmp")
        partial.write_text(json.dumps(self.data, indent=2))
        partial.replace(self.folder.record)


def curves_of(attempts: list[pd.DataFrame]) -> pd.DataFrame:
    """The run's curves (iteration, split, error) over all its attempts. An iteration logged by
    an attempt and again after a resume from an earlier checkpoint keeps the later value."""
    frames = []
    for attempt, metrics in enumerate(attempts):
        present = [column for column in SPLITS if column in metrics]
        long = metrics.melt(id_vars="step", value_vars=present, var_name="split",
                            value_name="error").dropna(subset=["error"])
        frames.append(long.assign(attempt=attempt))
    if not frames:
        return pd.DataFrame(columns=["iteration", "split", "error"])
    curves = pd.concat(frames, ignore_index=True)
    # Lightning's step is the 0-based index of the batch: after it, step + 1 iterations are done.
    curves["iteration"] = curves["step"].astype(int) + 1
    curves["split"] = curves["split"].map(SPLITS)
    curves = curves.sort_values("attempt").drop_duplicates(["split", "iteration"], keep="last")
    return curves.sort_values(["split", "iteration"])[["iteration", "split", "error"]]
