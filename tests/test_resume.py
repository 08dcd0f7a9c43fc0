"""Exact resume: a run stopped anywhere and rerun ends bit for bit where an uninterrupted run
ends (CPU), and the progress bar keeps its total after a resume."""

import pandas as pd
import pytest
import torch

from resnet_repro.analysis.collect import curves_of
from resnet_repro.config import compose_train
from resnet_repro.runs import RunFolder
from resnet_repro.training import ImageClassifier, launch
from resnet_repro.training.launch import RunFailed, train
from resnet_repro.training.progress import IterationProgressBar

#: 260 training images in batches of 32: 8 iterations an epoch, so iteration 12 is mid-epoch.
#: A checkpoint every 6 iterations; a logging window of 6, whose error (always below 100 %)
#: opens the warm-up gate at iteration 6, the first checkpoint.
RESUME_OVERRIDES = ["model.depth=8", "data.batch_size=32", "trainer.max_steps=20",
                    "trainer.val_check_interval=6", "trainer.log_every_n_steps=6",
                    "module.schedule.gate.from_depth=8", "module.schedule.gate.below_error=100",
                    "module.schedule.milestones=[100,200]"]


def config(smoke_overrides, runs, *extra):
    return compose_train([*smoke_overrides, "trainer.enable_progress_bar=false",
                          *RESUME_OVERRIDES, f"paths.runs={runs}", *extra])


def final_state(record):
    folder = RunFolder(record.directory)
    checkpoint = torch.load(folder.last_checkpoint, weights_only=False)
    return (torch.load(folder.weights), checkpoint["optimizer_states"][0]["state"],
            checkpoint["lr_schedulers"][0], curves_of(folder.read_metrics()))


@pytest.mark.parametrize("stop_at", [3, 8, 14])
def test_a_run_stopped_anywhere_and_rerun_equals_the_uninterrupted_run(
    smoke_overrides, tmp_path, monkeypatch, stop_at
):
    whole = final_state(train(config(smoke_overrides, tmp_path / "whole")))

    original = ImageClassifier.training_step

    def stop(self, batch, batch_idx):
        if self.global_step == stop_at:  # in the middle of an epoch (8 iterations each)
            raise RuntimeError("simulated crash")
        return original(self, batch, batch_idx)

    cfg = config(smoke_overrides, tmp_path / "resumed")
    monkeypatch.setattr(ImageClassifier, "training_step", stop)
    with pytest.raises(RunFailed, match="simulated crash"):
        train(cfg)
    monkeypatch.setattr(ImageClassifier, "training_step", original)
    record = train(cfg)
    assert record.status == "done" and len(record.data["attempts"]) == 2
    weights, optimizer, schedule, curves = final_state(record)

    assert weights.keys() == whole[0].keys()
    assert all(torch.equal(weights[name], whole[0][name]) for name in weights)
    assert all(torch.equal(optimizer[i]["momentum_buffer"], whole[1][i]["momentum_buffer"])
               for i in optimizer)
    assert schedule == whole[2] and schedule["lr_lambdas"][0]["gate_opened_at"] == 6
    pd.testing.assert_frame_equal(curves.reset_index(drop=True), whole[3].reset_index(drop=True))
    assert record.data["warmup_gate"] == {"applies": True, "factor": 0.1, "below_error": 100.0,
                                          "opened_at": 6}


def test_the_progress_bar_keeps_its_total_after_a_resume(smoke_overrides, tmp_path,
                                                          monkeypatch):
    cfg = compose_train([*smoke_overrides, *RESUME_OVERRIDES, f"paths.runs={tmp_path}"])
    seen = []
    original_make = launch.make_trainer

    def make_trainer(*args, **kwargs):
        trainer = original_make(*args, **kwargs)
        bar = next(c for c in trainer.callbacks if isinstance(c, IterationProgressBar))
        original_end = bar.on_train_batch_end

        def record_total(trainer, *rest):
            original_end(trainer, *rest)
            seen.append((trainer.global_step, bar.train_progress_bar.total))
            if trainer.global_step == 9 and len(seen) == 9:
                raise RuntimeError("simulated crash")
        bar.on_train_batch_end = record_total
        return trainer

    monkeypatch.setattr(launch, "make_trainer", make_trainer)
    with pytest.raises(RunFailed):
        train(cfg)
    train(cfg)
    assert [step for step, _ in seen][9:] == list(range(7, 21))  # resumed from iteration 6
    assert {total for _, total in seen} == {20}
