"""Exact resume: a run stopped anywhere (a crash, a crash during an evaluation, a wall-clock
budget, SIGTERM) and rerun ends bit for bit where an uninterrupted run ends (CPU), with every
test point; the progress bar keeps its total after a resume."""

import os
import signal
import time
from types import SimpleNamespace

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from resnet_repro.config import compose_train
from resnet_repro.runs import RunFolder, curves_of
from resnet_repro.training import ImageClassifier, launch
from resnet_repro.training.launch import RunFailed, Stopped, train
from resnet_repro.training.progress import IterationProgressBar

#: 260 training images in batches of 32: 8 iterations an epoch, so iteration 12 is mid-epoch.
#: A checkpoint and an evaluation every 6 iterations; a logging window of 6, whose error
#: (always below 100 %) opens the warm-up gate at iteration 6, the first checkpoint.
RESUME_OVERRIDES = ["model.depth=8", "data.batch_size=32", "trainer.max_steps=18",
                    "trainer.val_check_interval=6", "trainer.log_every_n_steps=6",
                    "module.schedule.gate.from_depth=8", "module.schedule.gate.below_error=100",
                    "module.schedule.milestones=[100,200]"]


def config(smoke_overrides, runs, *extra):
    return compose_train([*smoke_overrides, "trainer.enable_progress_bar=false",
                          *RESUME_OVERRIDES, f"paths.runs={runs}", *extra])


@pytest.fixture(autouse=True)
def keep_checkpoints(monkeypatch):
    """A done run's checkpoint is removed; these tests compare its optimizer state."""
    monkeypatch.setattr(RunFolder, "remove_checkpoints", lambda self: None)


def final_state(record):
    folder = RunFolder(record.directory)
    checkpoint = torch.load(folder.last_checkpoint, weights_only=False)
    return (torch.load(folder.weights), checkpoint["optimizer_states"][0]["state"],
            checkpoint["lr_schedulers"][0], curves_of(folder.read_metrics()))


def crash_then_resume(cfg, monkeypatch, hook: str, at: int):
    """Train ``cfg`` with ``ImageClassifier.<hook>`` raising once the run has done ``at``
    iterations, then rerun it to the end; the finished run's record."""
    original = getattr(ImageClassifier, hook)

    def crash(self, *args, **kwargs):
        if self.global_step == at:
            raise RuntimeError("simulated crash")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ImageClassifier, hook, crash)
    with pytest.raises(RunFailed, match="simulated crash"):
        train(cfg)
    monkeypatch.setattr(ImageClassifier, hook, original)
    record = train(cfg)
    assert record.status == "done" and len(record.data["attempts"]) == 2
    return record


@pytest.mark.parametrize("stop_at", [3, 8, 14])
def test_a_run_stopped_anywhere_and_rerun_equals_the_uninterrupted_run(
    smoke_overrides, tmp_path, monkeypatch, stop_at
):
    """Crashes in the middle of an epoch (8 iterations each), during the warm-up and after."""
    whole = final_state(train(config(smoke_overrides, tmp_path / "whole")))
    record = crash_then_resume(config(smoke_overrides, tmp_path / "resumed"), monkeypatch,
                               "training_step", stop_at)
    assert_same_run(record, whole)
    assert final_state(record)[2]["lr_lambdas"][0]["gate_opened_at"] == 6
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
    assert [step for step, _ in seen][9:] == list(range(7, 19))  # resumed from iteration 6
    assert {total for _, total in seen} == {18}


def test_written_to_a_log_file_the_progress_bar_writes_once_per_logging_window():
    assert IterationProgressBar(log_every=100).refresh_rate == 100  # pytest's stderr: no tty


def test_a_resumed_runs_bar_rates_only_this_attempts_iterations():
    """Resumed at 25,910 of 64,000, 100 iterations in 10 s: 10 it/s and about an hour left,
    not 2,601 it/s and a few seconds (the iterations before the resume counted as done now)."""
    progress = IterationProgressBar(log_every=100)
    progress._train_progress_bar = progress.init_train_tqdm()
    progress._span_run(SimpleNamespace(max_steps=64000, global_step=25910))
    bar = progress.train_progress_bar
    bar.n, bar.start_t = 26010, bar._time() - 10
    shown = str(bar)
    assert "26010/64000" in shown and "10.00it/s" in shown and "1:03:" in shown
    bar.close()


def assert_same_run(record, whole):
    weights, optimizer, schedule, curves = final_state(record)
    assert all(torch.equal(weights[name], whole[0][name]) for name in whole[0])
    assert all(torch.equal(optimizer[i]["momentum_buffer"], whole[1][i]["momentum_buffer"])
               for i in optimizer)
    assert schedule == whole[2]
    pd.testing.assert_frame_equal(curves.reset_index(drop=True), whole[3].reset_index(drop=True))
    tests = curves[curves.split == "test"]
    assert list(tests.iteration) == [6, 12, 18]


@pytest.mark.parametrize("crash_at", [6, 18])
def test_a_crash_during_an_evaluation_loses_no_test_point(smoke_overrides, tmp_path,
                                                          monkeypatch, crash_at):
    """The checkpoint of iteration 6 (or 18, the last) is written before its evaluation;
    Lightning skips that evaluation on restore, so the resume runs it first."""
    whole = final_state(train(config(smoke_overrides, tmp_path / "whole")))
    record = crash_then_resume(config(smoke_overrides, tmp_path / "resumed"), monkeypatch,
                               "validation_step", crash_at)
    assert record.data["attempts"][1]["iterations_from"] == crash_at
    assert_same_run(record, whole)


class SignalAt(pl.Callback):
    """Sends this process SIGTERM once iteration ``at`` is done (as a scheduler would)."""

    def __init__(self, at: int):
        self.at = at

    def on_train_batch_end(self, trainer, *_):
        if trainer.global_step == self.at:
            os.kill(os.getpid(), signal.SIGTERM)


def test_budget_and_sigterm_stops_resume_bit_for_bit_with_the_fast_settings(
    smoke_overrides, tmp_path, monkeypatch
):
    fast = ["trainer.precision=bf16-mixed", "module.compile={backend:eager}"]
    whole = final_state(train(config(smoke_overrides, tmp_path / "whole", *fast)))
    cfg = config(smoke_overrides, tmp_path / "resumed", *fast)

    with pytest.raises(Stopped, match="iteration 1 \\(budget\\)"):
        train(cfg, deadline=time.time())  # spent at once: stops after the first iteration
    original_make = launch.make_trainer
    monkeypatch.setattr(launch, "make_trainer", lambda *args, callbacks=(): original_make(
        *args, callbacks=[SignalAt(11), *callbacks]))
    with pytest.raises(Stopped, match="iteration 11 \\(SIGTERM\\)"):
        train(cfg)  # mid-epoch, between two evaluations
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers given back
    monkeypatch.setattr(launch, "make_trainer", original_make)
    record = train(cfg)
    attempts = record.data["attempts"]
    assert [a["iterations_from"] for a in attempts] == [0, 1, 11]
    assert [a["status"] for a in attempts] == ["interrupted", "interrupted", "done"]
    assert attempts[0]["precision"] == "bf16-mixed" and attempts[0]["compile"] == {
        "backend": "eager"}
    assert sorted(p.name for p in RunFolder(record.directory).checkpoints.iterdir()) == \
        ["last.ckpt"]
    assert_same_run(record, whole)


@pytest.mark.parametrize("stop_at", [12, 11])
def test_a_stop_on_a_logging_window_boundary_loses_no_window(smoke_overrides, tmp_path,
                                                              monkeypatch, stop_at):
    """Iteration 12 ends a logging window (of 6), whose training error is taken in the step:
    the stop must write it before it raises, as the uninterrupted run does after the step."""
    whole = final_state(train(config(smoke_overrides, tmp_path / "whole")))
    cfg = config(smoke_overrides, tmp_path / "resumed")
    original_make = launch.make_trainer
    monkeypatch.setattr(launch, "make_trainer", lambda *args, callbacks=(): original_make(
        *args, callbacks=[SignalAt(stop_at), *callbacks]))
    with pytest.raises(Stopped, match=f"iteration {stop_at} \\(SIGTERM\\)"):
        train(cfg)
    monkeypatch.setattr(launch, "make_trainer", original_make)
    record = train(cfg)
    assert list(final_state(record)[3].query("split == 'train'").iteration) == [6, 12, 18]
    assert_same_run(record, whole)
