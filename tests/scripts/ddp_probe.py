"""Trains a few steps with DDP on 2 CPU processes (gloo) and writes, per process, what it saw.

    python tests/scripts/ddp_probe.py <imagenet-like folder> <out dir>

Lightning starts the second process by running this script again; each writes
``<out>/rank<r>.json``: the training-set indices of its shard (epoch 0), the batch sizes it
trained on, its final step and a checksum of its weights.
"""

import json
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

from resnet_repro.data import ImageNetDataModule
from resnet_repro.models import ImageNetResNet
from resnet_repro.training import ImageClassifier, StepSchedule


class Recorder(pl.Callback):
    def __init__(self):
        self.batch_sizes: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batch_sizes.append(len(batch[1]))


def main(source: str, out: Path) -> None:
    pl.seed_everything(0)
    datamodule = ImageNetDataModule(source, cache_dir=out / "cache", batch_size=8,
                                    eval_batch_size=8, num_workers=0, scale=(40, 48),
                                    crop_size=32, test_size=40, mean_images=16)
    module = ImageClassifier(ImageNetResNet(18, shortcut="A", num_classes=4),
                             optimizer=lambda params: torch.optim.SGD(params, lr=0.01),
                             schedule=StepSchedule([100]), log_every=2)
    recorder = Recorder()
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=4,
                         val_check_interval=2, check_val_every_n_epoch=None,
                         use_distributed_sampler=False, logger=False, callbacks=[recorder],
                         enable_checkpointing=False, enable_progress_bar=False,
                         num_sanity_val_steps=0)
    trainer.fit(module, datamodule=datamodule)
    sampler = trainer.train_dataloader.sampler
    sampler.set_epoch(0)
    report = {
        "rank": trainer.global_rank, "world_size": trainer.world_size,
        "indices": list(iter(sampler)), "dataset_size": len(datamodule.samples["train"]),
        "batch_sizes": recorder.batch_sizes, "step": trainer.global_step,
        "checksum": float(sum(p.detach().double().sum() for p in module.net.parameters())),
    }
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
