"""One call of a 2-process DDP run on CPU (gloo) through ``launch.train``, stopped on the first
process only, for tests/test_cluster.py's stop-and-resume test:

    python tests/scripts/ddp_stop.py <runs dir> <data archive> <cache dir> <how>

``how``: ``whole`` (to the end), ``budget`` (the first process's wall-clock budget is spent at
once: it stops after iteration 1), ``signal@K`` (the first process alone gets SIGTERM after
iteration K). Lightning starts the second process by running this script again; the stop
must reach it through the processes' agreement. Exits 75 on a stop, as experiments/train.py.
"""

import os
import signal
import sys
import time

import pytorch_lightning as pl

from resnet_repro.config import compose_train
from resnet_repro.training import launch
from resnet_repro.training.launch import Stopped, train

#: 260 training images, batches of 32 (16 a process): 8 iterations an epoch; a checkpoint, an
#: evaluation and a logging window every 6 iterations.
OVERRIDES = ["profile=smoke", "model.depth=8", "data.batch_size=32", "trainer.max_steps=18",
             "trainer.val_check_interval=6", "trainer.log_every_n_steps=6", "checkpoint_every=6",
             "trainer.enable_progress_bar=false", "trainer.accelerator=cpu",
             "trainer.devices=2", "trainer.strategy=ddp", "threads=1"]


class SignalFirstProcessAt(pl.Callback):
    def __init__(self, at: int):
        self.at = at

    def on_train_batch_end(self, trainer, *_):
        if trainer.global_step == self.at and trainer.global_rank == 0:
            os.kill(os.getpid(), signal.SIGTERM)


def main(runs: str, data: str, cache: str, how: str) -> None:
    cfg = compose_train([*OVERRIDES, f"paths.runs={runs}", f"data.source={data}",
                         f"data.cache_dir={cache}"])
    first = os.environ.get("LOCAL_RANK", "0") == "0"
    deadline = time.time() if how == "budget" and first else None
    if how.startswith("signal@"):
        make = launch.make_trainer
        at = int(how.removeprefix("signal@"))
        launch.make_trainer = lambda *args, callbacks=(): make(
            *args, callbacks=[SignalFirstProcessAt(at), *callbacks])
    try:
        train(cfg, deadline)
    except Stopped as stop:
        print(stop)
        sys.exit(75)


if __name__ == "__main__":
    main(*sys.argv[1:])
