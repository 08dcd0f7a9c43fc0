"""Train one net, or a sweep of them with -m:

    python experiments/train.py model.depth=56 model.shortcut=null profile=cpu
    python experiments/train.py -m experiment=fig1 profile=cpu data.source=path/to/cifar10.tar.gz

In a sweep a failed or diverged run is recorded in its run.json and the others go on.
With ``time_budget=150m`` the sweep stops cleanly when that much wall-clock time has passed since
its start (as on SIGTERM or Ctrl-C): the run in progress saves a checkpoint at the iteration it
reached, the process exits with status 75, and the same command continues it.

On a GPU (or with ``fused=true``) a sweep first trains its same-shape runs together, as fused
groups (``training.fused_launch``); each point then finds its run done, and trains alone only
what could not be fused.

Several devices: one run starts its DDP processes itself (``trainer.devices=4``); a sweep over
several devices needs the processes started from outside, by torchrun or by SLURM (README).
"""

import logging
import os
import sys
import time

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig

from resnet_repro.config import sweep_exclusion
from resnet_repro.sweeps import sweep_configs
from resnet_repro.training.burst import fused_groups
from resnet_repro.training.fused_launch import train_fused
from resnet_repro.training.launch import RunFailed, Stopped, train
from resnet_repro.training.stopping import parse_duration

log = logging.getLogger("train")
#: The sweep's start: a budget counts from here, for every run of the sweep.
LAUNCHED_AT = time.time()
#: Set once the sweep's fused groups have trained (in this process).
FUSED_ONCE: list[bool] = []
#: The exit status of a clean stop before the end (EX_TEMPFAIL: run again to continue).
EXIT_STOPPED = 75


#: Set where torchrun or SLURM started the processes: Lightning then starts none itself.
EXTERNAL_LAUNCH = ("TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "LOCAL_RANK")


def device_count(devices) -> int:
    """How many devices ``trainer.devices`` asks for; 1 where Lightning decides ("auto", -1)."""
    if isinstance(devices, (list, ListConfig)):
        return len(devices)
    return int(devices) if str(devices).isdigit() else 1


def check_multirun_devices(cfg: DictConfig) -> None:
    """Lightning starts DDP processes by running the command line again, which in a multirun
    would run the whole sweep again in each process: refuse that, naming the launchers that
    work."""
    devices = cfg.trainer.devices
    several = device_count(devices) > 1 or cfg.trainer.get("num_nodes", 1) > 1
    if several and not any(name in os.environ for name in EXTERNAL_LAUNCH):
        raise SystemExit(
            f"a sweep (-m) with trainer.devices={devices} needs its processes started from "
            "outside: torchrun --standalone --nproc_per_node=N experiments/train.py -m ... "
            "(one machine), or hydra/launcher=slurm (a cluster); or run the points one by one "
            "without -m."
        )


def fusing(cfg: DictConfig) -> bool:
    """``fused``: auto fuses on a GPU, with one device per process."""
    if cfg.fused == "auto":
        return torch.cuda.is_available() and device_count(cfg.trainer.devices) == 1
    return bool(cfg.fused)


def train_sweep_fused(deadline: float | None) -> None:
    """Once per sweep, before its first point: every group of two or more unfinished runs of
    one depth (and starting iteration) trained fused, up to ``fused_most`` runs a group. A
    group's failure leaves its runs to the points; a budget stop stops the sweep. (A plain
    function and flag: joblib's workers unpickle the task by value.)"""
    if FUSED_ONCE:
        return
    FUSED_ONCE.append(True)
    overrides = [arg for arg in sys.argv[1:]  # the sweep as given, without Hydra's own
                 if arg not in ("-m", "--multirun") and not arg.startswith("hydra")]
    configs = sweep_configs(overrides)
    if not configs:  # every point left out (sweep.exclude)
        return
    fingerprint = instantiate(configs[0].data, seed=configs[0].seed).fingerprint
    for group in fused_groups(configs, fingerprint, configs[0].fused_most):
        if len(group) < 2:
            continue
        try:
            records = train_fused(group, deadline)
        except ValueError as error:  # not fusable: the points train them one by one
            log.info("not fused (%s): trained one by one", error)
            continue
        if any(record.status == "interrupted" for record in records):
            raise Stopped(f"fused group of {len(group)} stopped at its budget; run the same "
                          "command again to continue")


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s")
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        check_multirun_devices(cfg)
        if (rule := sweep_exclusion(cfg)) is not None:
            log.info("not part of %s (sweep.exclude: %s): skipped", cfg.experiment_name, rule)
            return
    budget = cfg.get("time_budget")
    deadline = None if budget is None else LAUNCHED_AT + parse_duration(budget)
    try:
        if HydraConfig.get().mode == RunMode.MULTIRUN and fusing(cfg):
            train_sweep_fused(deadline)
        train(cfg, deadline)
    except Stopped as stop:
        log.warning("%s", stop)
        sys.exit(EXIT_STOPPED)
    except RunFailed as error:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            raise
        log.error("%s; the sweep goes on", error)


if __name__ == "__main__":
    main()
