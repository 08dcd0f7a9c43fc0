"""Training runs in process: run keys, seeds, failure records, and resume after a crash."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from resnet_repro.config import compose_train
from resnet_repro.runs import RunFolder, RunRecord, curves_of, run_key
from resnet_repro.training import ImageClassifier, StepSchedule
from resnet_repro.training.launch import RunFailed, train


def make_config(*overrides: str):
    return compose_train(["trainer.enable_progress_bar=false", *overrides])


def test_run_key_depends_on_what_changes_the_result():
    base = run_key(make_config(), "data-hash")
    assert run_key(make_config("model.depth=56"), "data-hash") != base
    assert run_key(make_config("seed=1"), "data-hash") != base
    assert run_key(make_config("profile=cpu"), "data-hash") != base
    assert run_key(make_config(), "other-data") != base
    # where the data lies and how the run is watched or placed do not change the result
    assert run_key(make_config("data.source=/elsewhere/same.tar.gz"), "data-hash") == base
    assert run_key(make_config("trainer.enable_progress_bar=true"), "data-hash") == base
    assert run_key(make_config("trainer.accelerator=cpu", "threads=1"), "data-hash") == base
    # BatchNorm's statistics are per device: the number of processes counts where it is not 1
    assert run_key(make_config("trainer.devices=1", "trainer.num_nodes=1"), "data-hash") == base
    two_devices = run_key(make_config("trainer.devices=2"), "data-hash")
    assert two_devices != base
    assert run_key(make_config("trainer.devices=1", "trainer.num_nodes=2"), "data-hash") == \
        two_devices
    # where a run starts from another run's weights, that run is part of its identity
    deepened = run_key(make_config("model.depth=56", "init={from_depth: 20}"), "data-hash")
    assert deepened != run_key(make_config("model.depth=56"), "data-hash")


def test_seed_must_be_explicit_and_zero_is_a_seed(smoke_overrides):
    with pytest.raises(ValueError, match="seed"):
        train(make_config(*smoke_overrides, "seed=null"))
    record = train(make_config(*smoke_overrides, "seed=0"))
    assert record.data["seed"] == 0 and record.status == "done"


def test_unknown_experiment_lists_the_known_ones():
    with pytest.raises(Exception, match="fig1"):
        make_config("experiment=fig99")


def test_crashed_run_is_recorded_and_a_rerun_resumes_with_the_whole_curve(
    smoke_overrides, monkeypatch
):
    cfg = make_config(*smoke_overrides)
    original = ImageClassifier.on_train_batch_end

    def crash_at_iteration_12(self, outputs, batch, batch_idx):
        original(self, outputs, batch, batch_idx)
        if self.global_step == 12:
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(ImageClassifier, "on_train_batch_end", crash_at_iteration_12)
    with pytest.raises(RunFailed, match="simulated crash"):
        train(cfg)
    directory = next(Path(cfg.paths.runs).iterdir())
    record = json.loads((directory / "run.json").read_text())
    assert record["status"] == "failed" and "simulated crash" in record["error"]
    assert (directory / "checkpoints" / "last.ckpt").exists()  # saved at iteration 10

    monkeypatch.setattr(ImageClassifier, "on_train_batch_end", original)
    record = train(cfg).data
    assert record["status"] == "done" and len(record["attempts"]) == 2
    assert record["attempts"][1]["iterations"] == 20
    assert pd.read_csv(directory / "attempt-1" / "metrics.csv")["step"].min() >= 10
    curves = curves_of(RunFolder(directory).read_metrics())
    assert list(curves[curves.split == "train"].iteration) == [5, 10, 15, 20]
    assert list(curves[curves.split == "test"].iteration) == [10, 20]

    assert not (directory / "checkpoints").exists()  # done: the weights stay, not the checkpoint
    assert train(cfg).data["attempts"] == record["attempts"]  # skipped, not retrained


@pytest.mark.parametrize(("threshold", "rates", "opened_at"),
                         [(100.0, [0.01, 0.1, 0.1], 5), (0.0, [0.01] * 3, None)])
def test_paper_warmup_ends_when_training_error_falls_below_the_threshold(
    smoke_overrides, threshold, rates, opened_at
):
    cfg = make_config(*smoke_overrides, "module.schedule.gate.from_depth=8",
                      f"module.schedule.gate.below_error={threshold}",
                      "module.schedule.milestones=[100,200]", "trainer.max_steps=15")
    record = train(cfg)
    metrics = pd.concat(pd.read_csv(p) for p in record.directory.glob("attempt-*/metrics.csv"))
    logged = metrics.dropna(subset=["lr"]).sort_values("step")["lr"]
    # lr is the rate of the last update of each window of 5 iterations; a window below the
    # threshold opens the gate for the next update
    assert list(logged.round(6)) == rates
    assert record.data["warmup_gate"]["applies"]
    assert record.data["warmup_gate"]["opened_at"] == opened_at


def test_sweeps_give_the_warmup_to_110_and_deeper_only():
    from resnet_repro.sweeps import sweep_configs
    configs = sweep_configs(["experiment=table6", "profile=paper"])
    gated = {(c.model.depth, c.seed): StepSchedule(**{k: v for k, v in c.module.schedule.items()
                                                    if k != "_target_"}).gated for c in configs}
    assert {depth for (depth, _), on in gated.items() if on} == {110, 1202}
    assert sorted(seed for depth, seed in gated if depth == 110) == [0, 1, 2, 3, 4]
    assert sorted(seed for depth, seed in gated if depth == 56) == [0, 1, 2]
    assert sorted(seed for depth, seed in gated if depth == 1202) == [0]  # Table 6's one run
    fig6 = {(c.model.shortcut, c.model.depth) for c in sweep_configs(["experiment=fig6"])}
    assert (None, 1202) not in fig6 and (None, 110) not in fig6 and ("A", 1202) in fig6
    assert {d for _, d in sweep_configs_depths("fig6", "cpu")} == {20, 32, 44, 56}


def sweep_configs_depths(experiment: str, profile: str) -> set:
    from resnet_repro.sweeps import sweep_configs
    return {(c.model.shortcut, c.model.depth)
            for c in sweep_configs([f"experiment={experiment}", f"profile={profile}"])}


def test_block_gradient_norms_are_logged_on_request_and_leave_the_run_as_it_was(
    smoke_overrides
):
    assert run_key(make_config("module.grad_norm_every=5"), "d") == run_key(make_config(), "d")
    record = train(make_config(*smoke_overrides, "module.grad_norm_every=5"))
    metrics = pd.concat(pd.read_csv(p) for p in record.directory.glob("attempt-*/metrics.csv"))
    logged = metrics.dropna(subset=["grad_norm/stage1.0"])
    assert sorted(logged["step"]) == [4, 9, 14, 19]  # iterations 5, 10, 15, 20
    assert {"grad_norm/conv1", "grad_norm/stage3.0", "grad_norm/fc"} <= set(metrics.columns)
    assert (logged["grad_norm/stage1.0"] > 0).all()


def test_slurm_launcher_config_composes_to_submitit():
    cfg = compose_train(["hydra/launcher=slurm", "experiment=fig6"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher." \
                                "SlurmLauncher"
    assert launcher.gpus_per_node == 1 and launcher.timeout_min == 720


def test_only_the_first_ddp_process_writes_the_run_record(tmp_path):
    follower = RunRecord(tmp_path / "run", writable=False)
    follower.start(make_config(), {"net": "resnet-20"})
    follower.finish("done", 20)
    assert follower.status == "done" and not (tmp_path / "run").exists()


def test_a_run_without_its_data_records_nothing_and_names_the_fix(tmp_path):
    cfg = make_config("profile=smoke", f"data.source={tmp_path / 'nowhere.tar.gz'}",
                      f"paths.runs={tmp_path / 'runs'}")
    with pytest.raises(RunFailed, match="not started: .*does not exist.*data.source="):
        train(cfg)
    assert not (tmp_path / "runs").exists()


def test_the_analysis_budget_is_chosen_apart_from_the_training_profile():
    from resnet_repro.config import budget_description
    paper = make_config("profile=paper")
    on_cpu = make_config("profile=paper", "analysis_budget=cpu")
    assert paper.analysis.budget.landscape_points == 51
    assert on_cpu.analysis.budget.landscape_points == 11
    assert on_cpu.trainer.max_steps == 64000  # the nets analysed are still the paper's
    assert run_key(on_cpu, "d") == run_key(paper, "d")  # nor does it touch any run
    lines = budget_description("cpu", on_cpu.analysis.budget)
    assert "Analysis budget `cpu`" in lines[1] and "landscape_points 11" in lines[-1]


def test_training_reads_through_the_run_folder_and_imports_no_analysis():
    """One way through the house: data, models, training and runs never import analysis."""
    code = ("import sys\n"
            "import resnet_repro.training.launch, resnet_repro.training.fused_launch\n"
            "import resnet_repro.training.burst, resnet_repro.sweeps, resnet_repro.models\n"
            "print(sorted(m for m in sys.modules if m.startswith('resnet_repro.analysis')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
