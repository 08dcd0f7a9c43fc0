"""Train one net, or a sweep of them with -m:

    python experiments/train.py model.depth=56 model.shortcut=null profile=cpu
    python experiments/train.py -m experiment=fig1 profile=cpu data.source=path/to/cifar10.tar.gz

In a sweep a failed or diverged run is recorded in its run.json and the others go on.
With ``time_budget=150m`` the sweep stops cleanly when that much wall-clock time has passed since
its start (as on SIGTERM or Ctrl-C): the run in progress saves a checkpoint at the iteration it
reached, the process exits with status 75, and the same command continues it.

Several devices: one run starts its DDP processes itself (``trainer.devices=4``); a sweep over
several devices needs the processes started from outside, by torchrun or by SLURM (README).
"""

import logging
import os
import sys
import time

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig

from resnet_repro.config import sweep_exclusion
from resnet_repro.training.launch import RunFailed, Stopped, train
from resnet_repro.training.stopping import parse_duration

log = logging.getLogger("train")
#: The sweep's start: a budget counts from here, for every run of the sweep.
LAUNCHED_AT = time.time()
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
