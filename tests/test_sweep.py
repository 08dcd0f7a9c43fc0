"""End to end: a Hydra multirun of fig1 at the smoke profile on a tiny ImageFolder, its run
directories, a rerun that skips them, and the analysis with its figure."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from resnet_repro.analysis.collect import summarize
from resnet_repro.analysis.fig1 import plot_error_curves
from resnet_repro.runs import read_runs
from resnet_repro.sweeps import left_out_of_grid, sweep_configs, sweep_run_directories

ROOT = Path(__file__).resolve().parents[1]


def run_script(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    paths = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    return subprocess.run(
        [sys.executable, str(ROOT / "experiments" / script), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.fixture(scope="module")
def fig1_sweep(tiny_archive, tmp_path_factory):
    """fig1 at the smoke profile, trained once for all the tests below."""
    work = tmp_path_factory.mktemp("sweep")
    overrides = ["experiment=fig1", "profile=smoke", f"data.source={tiny_archive}",
                 f"data.cache_dir={work / 'cache'}", f"paths.runs={work / 'runs'}",
                 f"paths.results={work / 'results'}", "trainer.enable_progress_bar=false"]
    result = run_script("train.py", "-m", *overrides, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work, overrides


def test_experiment_carries_its_own_grid(tiny_archive):
    configs = sweep_configs(["experiment=fig1", f"data.source={tiny_archive}"])  # paper
    assert [(c.model.depth, c.model.shortcut, c.seed) for c in configs] == [
        (20, None, 0), (20, None, 1), (20, None, 2), (56, None, 0), (56, None, 1), (56, None, 2)]
    wider = sweep_configs(
        ["experiment=fig1", "model.depth=20,32,44", "seed=0", f"data.source={tiny_archive}"]
    )
    assert [c.model.depth for c in wider] == [20, 32, 44]
    one_seed = sweep_configs(["experiment=table6", "model.depth=20,56", "seed=0"])
    assert [(c.model.depth, c.seed) for c in one_seed] == [(20, 0), (56, 0)]


def test_a_narrowed_sweep_names_the_nets_of_the_figure_it_leaves_out():
    partial = ["experiment=fig6", "profile=paper", "model.depth=20,56"]
    assert left_out_of_grid(partial) == ["plain-32", "plain-44", "resnet-32", "resnet-44",
                                         "resnet-110", "resnet-1202"]
    assert left_out_of_grid(["experiment=fig6", "profile=cpu"]) == []
    assert left_out_of_grid(["experiment=fig1", "profile=paper", "seed=1"]) == []


def test_sweep_writes_one_finished_run_per_point(fig1_sweep):
    work, overrides = fig1_sweep
    directories = sweep_run_directories(overrides)
    assert sorted(p.name for p in (work / "runs").iterdir()) == sorted(p.name for p in directories)
    records = [json.loads((d / "run.json").read_text()) for d in directories]
    assert [r["net"] for r in records] == ["plain-20", "plain-56"]
    assert all(r["status"] == "done" and r["iterations"] == 20 for r in records)
    assert all(r["seed"] == 0 and r["profile"] == "smoke" for r in records)
    # done: the final weights stay, the checkpoint goes
    assert all((d / "model.pt").exists() and not (d / "checkpoints").exists()
               for d in directories)
    metrics = pd.read_csv(directories[0] / "attempt-0" / "metrics.csv")
    assert metrics["train/err"].notna().sum() == 4  # every 5 of 20 iterations
    assert metrics["test/err"].notna().sum() == 2  # every 10


def test_rerun_skips_finished_runs(fig1_sweep):
    work, overrides = fig1_sweep
    result = run_script("train.py", "-m", *overrides, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (result.stdout + result.stderr).count("skipped") == 2
    for directory in sweep_run_directories(overrides):
        assert len(json.loads((directory / "run.json").read_text())["attempts"]) == 1


def test_analysis_writes_tables_and_a_figure_with_two_lines_per_panel(fig1_sweep):
    work, overrides = fig1_sweep
    result = run_script("analyze.py", *overrides, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    out = work / "results" / "fig1" / "smoke"
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["net"]) == ["plain-20", "plain-56"]
    assert list(summary["params"]) == [269_722, 853_018]
    assert summary["train_error"].between(0, 100).all()
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["split"]) == {"train", "test"}
    assert curves.groupby(["net", "split"]).size().to_dict() == {
        ("plain-20", "test"): 2, ("plain-20", "train"): 4,
        ("plain-56", "test"): 2, ("plain-56", "train"): 4,
    }
    assert (out / "fig1.png").stat().st_size > 10_000 and (out / "fig1.pdf").exists()
    assert "plain-56" in (out / "README.md").read_text()

    curves, _ = summarize(read_runs(sweep_run_directories(overrides)))
    figure = plot_error_curves(curves, "fig1")
    for axis in figure.axes:
        assert [line.get_label() for line in axis.get_lines()] == ["plain-20", "plain-56"]
        assert all(len(line.get_xdata()) >= 2 for line in axis.get_lines())


def test_a_diverged_run_is_recorded_and_the_sweep_and_analysis_go_on(tiny_archive, tmp_path):
    overrides = ["profile=smoke", "model.depth=8", "module.optimizer.lr=1e30,0.1",
                 f"data.source={tiny_archive}", f"data.cache_dir={tmp_path / 'cache'}",
                 f"paths.runs={tmp_path / 'runs'}", f"paths.results={tmp_path / 'results'}",
                 "trainer.enable_progress_bar=false"]
    result = run_script("train.py", "-m", *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    records = {r["status"]: r for r in (json.loads(p.read_text())
                                        for p in (tmp_path / "runs").glob("*/run.json"))}
    assert set(records) == {"diverged", "done"}
    assert "nan" in records["diverged"]["error"]
    result = run_script("analyze.py", *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = pd.read_csv(tmp_path / "results" / "runs" / "smoke" / "summary.csv")
    assert sorted(summary["status"]) == ["diverged", "done"]


def test_a_fused_sweep_trains_its_same_shape_runs_together(tiny_archive, tmp_path):
    overrides = ["profile=smoke", "model.depth=8", "model.shortcut=null,A", "fused=true",
                 f"data.source={tiny_archive}",
                 f"data.cache_dir={tmp_path / 'cache'}", f"paths.runs={tmp_path / 'runs'}",
                 f"paths.results={tmp_path / 'results'}", "trainer.enable_progress_bar=false"]
    result = run_script("train.py", "-m", *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/run.json")]
    assert len(records) == 2 and {r["status"] for r in records} == {"done"}
    assert all([a.get("fused") for a in r["attempts"]] == [2] for r in records)
    result = run_script("analyze.py", *overrides, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = pd.read_csv(tmp_path / "results" / "runs" / "smoke" / "summary.csv")
    assert summary["test_error"].notna().all()
