"""``train(cfg)``: one run from a composed config, skipped if done, resumed if interrupted."""

from __future__ import annotations

import contextlib
import logging
import traceback
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.plugins.precision import MixedPrecision
from pytorch_lightning.utilities.model_helpers import is_overridden

from resnet_repro.bf16 import BF16_FLAGS, bf16_autocast, kernels
from resnet_repro.data.sources import DataSourceError
from resnet_repro.models.surgery import deepen
from resnet_repro.runs import (
    RunFolder,
    RunRecord,
    curves_of,
    group_key,
    init_source,
    run_directory,
    run_identity,
)
from resnet_repro.training.module import DivergedError
from resnet_repro.training.progress import IterationProgressBar
from resnet_repro.training.stopping import StopCleanly, StopRequested

log = logging.getLogger(__name__)
# The data set sits in memory as tensors and a batch is one index: workers would only add cost.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# Under DDP the module sums its error counts over the processes before logging (ErrorWindow).
warnings.filterwarnings("ignore", ".*sync_dist=True.*")
# Lightning cannot see that the training batches resume mid-epoch: the sampler takes its place
# in the epoch from the checkpointed iteration count (data.cifar10.RandomBatches).
warnings.filterwarnings("ignore", ".*your dataloader is not resumable.*")


class RunFailed(RuntimeError):
    """A run ended without finishing; its run.json says how (failed, diverged, interrupted)."""


class Stopped(RuntimeError):
    """A run stopped cleanly before its end (wall-clock budget, SIGTERM, Ctrl-C) with a
    checkpoint at the iteration reached: the same command continues it. A sweep stops too."""


def train(cfg: DictConfig, deadline: float | None = None) -> RunRecord:
    """Fit, then (where the data module has a test set, as ImageNet's 10-crop test) test;
    save the final weights. Under DDP every process calls this; only the first one writes.
    ``deadline`` (a ``time.time()`` value) stops the run cleanly when it passes (``Stopped``).

    A run is done only with its evaluation at ``max_steps``; a resume from a checkpoint of an
    evaluation iteration whose evaluation was not logged (Lightning skips it on restore) runs
    it first. The checkpoint is removed once the run is done; the final weights stay."""
    if cfg.get("seed") is None:
        raise ValueError("seed must be given explicitly (seed=0 is a seed like any other)")
    if cfg.get("threads") is not None:
        torch.set_num_threads(cfg.threads)
    datamodule = instantiate(cfg.data, seed=cfg.seed)
    with data_at_hand():
        fingerprint = datamodule.fingerprint
    directory = run_directory(cfg, fingerprint)
    record = RunRecord(directory)
    if record.status == "done":
        log.info("%s is done already (%s): skipped", record.data["net"], directory)
        return record
    with data_at_hand():  # read before anything is recorded: no empty run folder is left
        datamodule.prepare_data()

    pl.seed_everything(cfg.seed, workers=True)
    net = instantiate(cfg.model)
    if init_source(cfg) is not None:
        net.load_state_dict(deepened_weights(cfg, fingerprint))
    module = instantiate(cfg.module, net=net)
    last = record.folder.last_checkpoint
    stopper = StopCleanly(last, deadline)
    trainer = make_trainer(cfg, directory, record.attempt + 1, callbacks=[stopper])
    record.writable = trainer.is_global_zero
    resumed_at = checkpoint_step(last)
    record.start(cfg, run_description(cfg, net, datamodule, fingerprint),
                 attempt_settings(cfg, resumed_at))
    log.info("run %s: %s, seed %s, from iteration %s, in %s", record.attempt, net.name, cfg.seed,
             resumed_at, directory)
    if bf16_kernels(cfg) == "fp32":
        log.info("bf16-mixed through fp32 kernels: this CPU has neither %s (resnet_repro.bf16)",
                 " nor ".join(BF16_FLAGS))
    try:
        if resumed_at:
            evaluate_if_missing(cfg, record.folder, module, datamodule, trainer, resumed_at)
        trainer.fit(module, datamodule=datamodule, ckpt_path=last if last.exists() else None)
        if trainer.global_step >= trainer.max_steps and is_overridden("test_dataloader",
                                                                      datamodule):
            trainer.test(module, datamodule=datamodule, verbose=False)
    except StopRequested as stop:
        _finish(record, module, "interrupted", trainer.global_step, str(stop))
        stopper.hand_on()  # under submitit, SIGUSR2 requeues the job here
        raise Stopped(f"{net.name} stopped at iteration {trainer.global_step} ({stop}), "
                      f"checkpoint in {last}; run the same command again to continue") from stop
    except DivergedError as error:
        _finish(record, module, "diverged", trainer.global_step, str(error))
        raise RunFailed(f"{net.name} diverged: {error}") from error
    except Exception as error:
        _finish(record, module, "failed", trainer.global_step, traceback.format_exc())
        raise RunFailed(f"{net.name} failed: {error}") from error
    except BaseException:  # a second Ctrl+C: Lightning shuts down, then exits
        _finish(record, module, "interrupted", trainer.global_step)
        raise
    if trainer.global_step < trainer.max_steps:
        _finish(record, module, "interrupted", trainer.global_step)
        raise RunFailed(f"{net.name} stopped at iteration {trainer.global_step}; rerun to resume")
    if record.writable and not evaluated_at(record.folder, trainer.max_steps, cfg):  # rank 0
        error = f"no evaluation logged at max_steps ({trainer.max_steps})"
        _finish(record, module, "failed", trainer.global_step, error)
        raise RunFailed(f"{net.name}: {error}")
    record.save_weights(net)
    _finish(record, module, "done", trainer.global_step)
    if record.writable:
        record.folder.remove_checkpoints()
    return record


class Bf16ThroughFp32Kernels(MixedPrecision):
    """Lightning's ``bf16-mixed`` computed by fp32 kernels (``resnet_repro.bf16``): the same
    arithmetic, on a CPU without bf16 instructions many times as fast as torch's bf16 kernels
    (README, "Speed settings")."""

    def forward_context(self):
        return bf16_autocast(self.device, choice="fp32", cache_enabled=False)


def device_type(cfg: DictConfig) -> str:
    """Where the trainer of ``cfg`` computes: "cuda" or "cpu"."""
    on_cpu = cfg.trainer.accelerator == "cpu" or not torch.cuda.is_available()
    return "cpu" if on_cpu else "cuda"


def bf16_kernels(cfg: DictConfig) -> str | None:
    """How the run of ``cfg`` computes in bf16 here (``resnet_repro.bf16.kernels``)."""
    return kernels(str(cfg.trainer.precision), device_type(cfg), cfg.get("bf16_kernels", "auto"))


def instantiate_trainer(cfg: DictConfig, **arguments) -> pl.Trainer:
    """The ``cfg.trainer`` with ``arguments``, its bf16 through fp32 kernels where it must."""
    if bf16_kernels(cfg) == "fp32":
        plugin = Bf16ThroughFp32Kernels("bf16-mixed", device_type(cfg))
        arguments |= {"precision": None, "plugins": [plugin]}
    return instantiate(cfg.trainer, **arguments)


@contextlib.contextmanager
def data_at_hand():
    """A missing or broken data source fails the run before it starts (in a sweep, the others
    go on: a clone without the data still skips the finished runs and draws them)."""
    try:
        yield
    except DataSourceError as error:
        raise RunFailed(f"not started: {error}") from error


def checkpoint_step(path: Path) -> int:
    """The iteration a checkpoint was saved at (0 where there is none)."""
    if not path.exists():
        return 0
    return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])


def is_evaluation_step(cfg: DictConfig, step: int) -> bool:
    """Whether the schedule evaluates after ``step`` iterations (every val_check_interval)."""
    interval = cfg.trainer.val_check_interval
    return isinstance(interval, int) and step > 0 and step % interval == 0


def evaluated_at(folder: RunFolder, step: int, cfg: DictConfig) -> bool:
    """Whether an evaluation is logged at ``step``, or none is due there."""
    if not is_evaluation_step(cfg, step):
        return True
    curves = curves_of(folder.read_metrics())
    evaluations = curves[curves["split"] != "train"]
    return bool((evaluations["iteration"] == step).any())


def evaluate_if_missing(cfg: DictConfig, folder: RunFolder, module, datamodule,
                        trainer: pl.Trainer, step: int) -> None:
    """Run the evaluation of iteration ``step`` from the run's checkpoint and log it into this
    attempt, where it is due and no earlier attempt logged it: Lightning fast-forwards past
    the evaluation of the iteration it restores, so a checkpoint written at an evaluation
    iteration (before the evaluation) would otherwise lose that test point for good."""
    if evaluated_at(folder, step, cfg):
        return
    log.info("evaluating iteration %s first: its evaluation was not logged", step)
    evaluator = instantiate_trainer(cfg, logger=False, callbacks=[], enable_progress_bar=False,
                                enable_checkpointing=False)
    results = evaluator.validate(module, datamodule=datamodule,
                                 ckpt_path=folder.last_checkpoint, verbose=False)
    metrics = {name.split("/dataloader_idx")[0]: value
               for result in results for name, value in result.items()}
    trainer.logger.log_metrics(metrics, step=step - 1)  # Lightning's step: iterations - 1
    trainer.logger.save()


def deepened_weights(cfg: DictConfig, fingerprint: str) -> dict:
    """The starting weights of a run with ``init``: its source run's final weights, deepened to
    this run's depth by identity blocks (``models.surgery.deepen``)."""
    source = init_source(cfg)
    folder = RunFolder(run_directory(source, fingerprint))
    if folder.read_record().get("status") != "done":
        raise RunFailed(
            f"init.from_depth={cfg.init.from_depth} needs the finished run of this config at "
            f"depth {source.model.depth} ({folder.directory}); train it first: python "
            f"experiments/train.py model.depth={source.model.depth} "
            f"model.shortcut={source.model.shortcut or 'null'} seed={cfg.seed} profile="
            f"{cfg.profile_name}")
    return deepen(folder.load_net(), cfg.model.depth).state_dict()


def _finish(record: RunRecord, module, status: str, iterations: int, error: str | None = None):
    """End the attempt, recording the warm-up gate's state (where the schedule has one)."""
    gate_record = getattr(module.schedule, "gate_record", None)
    if gate_record is not None:
        record.data["warmup_gate"] = gate_record()
    record.finish(status, iterations, error)


def attempt_settings(cfg: DictConfig, resumed_at: int) -> dict:
    """What an attempt records beside its machine: where it started and how fast it ran."""
    compile_options = cfg.module.get("compile")
    return {"iterations_from": resumed_at, "precision": str(cfg.trainer.precision),
            "bf16_kernels": bf16_kernels(cfg),
            "compile": None if compile_options is None else OmegaConf.to_container(
                compile_options)}


def run_description(cfg: DictConfig, net: torch.nn.Module, datamodule, fingerprint: str) -> dict:
    return {
        "net": net.name,
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "params": sum(p.numel() for p in net.parameters()),
        "seed": cfg.seed,
        "profile": cfg.profile_name,
        "experiment": cfg.get("experiment_name"),
        "dataset": {"source": str(datamodule.source), "fingerprint": fingerprint},
        "group": group_key(cfg, fingerprint),
        "max_steps": cfg.trainer.max_steps,
        **{key: value for key, value in run_identity(cfg, fingerprint).items()
           if key == "init"},
    }


def make_trainer(
    cfg: DictConfig, directory, attempt: int, callbacks: list[pl.Callback] = ()
) -> pl.Trainer:
    """A Trainer logging to ``attempt-<k>/metrics.csv``: a fresh folder per (re)start, since
    CSVLogger empties a reused one; the analysis joins the attempts."""
    folder = RunFolder(directory)
    logger = CSVLogger(folder.directory, name="", version=folder.attempt(attempt).name)
    checkpoint = ModelCheckpoint(
        dirpath=folder.checkpoints,
        save_last=True,
        save_top_k=0,
        every_n_train_steps=cfg.checkpoint_every,
        enable_version_counter=False,  # last.ckpt is always the latest, whoever wrote it before
    )
    callbacks = [checkpoint, *callbacks]
    if cfg.trainer.enable_progress_bar:
        callbacks.append(IterationProgressBar(cfg.trainer.log_every_n_steps))
    return instantiate_trainer(cfg, logger=logger, callbacks=callbacks)
