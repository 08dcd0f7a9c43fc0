"""Beyond one machine, for real: sweeps through Hydra's submitit launcher on a one-node SLURM
cluster started by tests/cluster/slurm.sh (real slurmctld, slurmd and slurmdbd), a job
preempted or killed and resumed exactly, and DDP on 2 CPU processes stopped and resumed, alone
and as one SLURM job of 2 tasks. Smoke-sized nets on the tiny archive; ``threads=1``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from resnet_repro.config import compose_train
from resnet_repro.runs import RunFolder, curves_of, group_key, run_key

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tests" / "cluster" / "slurm.sh"
SLOW_REQUEUE = ROOT / "tests" / "cluster" / "slow-requeue"  # an scontrol, see its header
LAUNCHER = ["hydra/launcher=slurm_cpu", "hydra.launcher.partition=debug",
            "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=10"]
#: One resnet-8 of 240 iterations in batches of 32, a checkpoint every 60: long enough to be
#: stopped after its first checkpoint.
LONG_RUN = ["profile=smoke", "model.depth=8", "seed=0", "data.batch_size=32",
            "trainer.max_steps=240", "trainer.log_every_n_steps=10",
            "trainer.val_check_interval=120", "checkpoint_every=60"]


def cluster_up(env: dict) -> bool:
    return subprocess.run(["sinfo"], env=env, capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def slurm_env():
    """The environment that talks to the test cluster, started here (and stopped after) unless
    it was up already. Without root and without SLURM installed, skipped, naming the fix."""
    conf = subprocess.run([str(CLUSTER), "conf"], capture_output=True, text=True).stdout.strip()
    env = {**os.environ, "SLURM_CONF": conf, "PYTHONPATH": str(ROOT)}
    started_here = not cluster_up(env)
    if started_here:
        if os.geteuid() != 0 and subprocess.run(["which", "slurmctld"]).returncode != 0:
            pytest.skip(f"no SLURM here and not root: run {CLUSTER} start as root first")
        start = subprocess.run([str(CLUSTER), "start"], capture_output=True, text=True)
        assert start.returncode == 0, f"the test cluster did not start:\n{start.stderr}"
    yield env
    if started_here:
        subprocess.run([str(CLUSTER), "stop"], check=True, capture_output=True)


def sweep_command(tmp_path: Path, tiny_archive: Path, *overrides: str) -> list[str]:
    return [sys.executable, "experiments/train.py", "-m", *LAUNCHER, "threads=1",
            "trainer.enable_progress_bar=false", f"data.source={tiny_archive}",
            f"data.cache_dir={tmp_path / 'cache'}", f"paths.runs={tmp_path / 'runs'}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides]


def run_sweep(env, tmp_path, tiny_archive, *overrides, check=True):
    return subprocess.run(sweep_command(tmp_path, tiny_archive, *overrides), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=check)


def records(runs: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(runs.glob("*/run.json"))]


def attempts(record: dict) -> list[tuple]:
    return [(a["iterations_from"], a.get("status")) for a in record["attempts"]]


def job_ids(sweep: Path) -> list[str]:
    """The SLURM job ids of a sweep's submissions (submitit's folders, one per job)."""
    return sorted({path.name for path in (sweep / "submitit").iterdir()
                   if path.is_dir() and path.name[0].isdigit()})


def job_states(env, ids) -> set[str]:
    """The jobs' final states in SLURM's accounting. A job's result reaches the sweep before
    slurmdbd records the job's end, so states still open are read again, for up to 60 s."""
    deadline = time.time() + 60
    while True:
        out = subprocess.run(["sacct", "--noheader", "--parsable2", "-X", "-o", "State",
                              *[f"-j{job}" for job in ids]], env=env, capture_output=True,
                             text=True, check=True).stdout
        states = set(out.split())
        if not states & {"PENDING", "RUNNING", "REQUEUED"} or time.time() > deadline:
            return states
        time.sleep(0.5)


def test_a_sweep_runs_as_slurm_jobs_and_a_resubmission_skips_its_finished_points(
    slurm_env, tmp_path, tiny_archive
):
    sweep = ["experiment=fig1", "profile=smoke"]
    run_sweep(slurm_env, tmp_path, tiny_archive, *sweep)
    first = records(tmp_path / "runs")
    assert sorted(r["net"] for r in first) == ["plain-20", "plain-56"]
    assert all(r["status"] == "done" and r["iterations"] == 20 for r in first)
    assert job_states(slurm_env, job_ids(tmp_path / "sweep")) == {"COMPLETED"}  # via slurmdbd

    analysis = [f"paths.results={tmp_path / 'results'}", f"data.source={tiny_archive}",
                f"data.cache_dir={tmp_path / 'cache'}", f"paths.runs={tmp_path / 'runs'}"]
    subprocess.run([sys.executable, "experiments/analyze.py", *sweep, *analysis], cwd=ROOT,
                   check=True, capture_output=True, timeout=600)
    summary = pd.read_csv(tmp_path / "results" / "fig1" / "smoke" / "summary.csv")
    assert sorted(summary["net"]) == ["plain-20", "plain-56"]

    run_sweep(slurm_env, tmp_path, tiny_archive, *sweep)  # submitted again: nothing trains
    assert [attempts(r) for r in records(tmp_path / "runs")] == [[(0, "done")]] * 2
    logs = "".join(p.read_text() for p in (tmp_path / "sweep" / "submitit").rglob("*.err"))
    assert logs.count("is done already") == 2


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny_archive):
    """LONG_RUN trained in one go on this machine, outside SLURM: the reference."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    subprocess.run([sys.executable, "experiments/train.py", *LONG_RUN, "threads=1",
                    "trainer.enable_progress_bar=false", f"data.source={tiny_archive}",
                    f"data.cache_dir={folder / 'cache'}", f"paths.runs={folder / 'runs'}",
                    f"hydra.run.dir={folder / 'hydra'}"], cwd=ROOT, check=True,
                   capture_output=True, timeout=600)
    [run] = (folder / "runs").iterdir()
    return RunFolder(run)


def assert_same_run(folder: RunFolder, reference: RunFolder) -> None:
    weights, expected = torch.load(folder.weights), torch.load(reference.weights)
    assert all(torch.equal(weights[name], expected[name]) for name in expected)
    pd.testing.assert_frame_equal(curves_of(folder.read_metrics()).reset_index(drop=True),
                                  curves_of(reference.read_metrics()).reset_index(drop=True))


def wait_for_iteration(runs: Path, at_least: int, process: subprocess.Popen) -> None:
    """Until the first attempt has logged a training window at ``at_least`` or later."""
    deadline = time.time() + 300
    while time.time() < deadline:
        assert process.poll() is None, "the sweep ended before it could be stopped"
        for metrics in runs.glob("*/attempt-0/metrics.csv"):
            steps = pd.read_csv(metrics)["step"] if metrics.stat().st_size else []
            if len(steps) and steps.max() + 1 >= at_least:
                return
        time.sleep(0.5)
    raise TimeoutError(f"no training window at iteration {at_least} within 300 s")


def kill_hard(env, job: str) -> None:
    """SIGKILL to the job's task processes, as the kernel's OOM killer or a lost node would
    end them (``scancel --signal=KILL`` is a cancellation: SIGTERM first, then KILL)."""
    listing = subprocess.run(["scontrol", "listpids", job], env=env, capture_output=True,
                             text=True, check=True).stdout.split("\n")[1:]
    tasks = [int(row.split()[0]) for row in listing if row.split()[2:3] == ["0"]]  # step 0
    assert tasks, f"no task of job {job} found"
    for pid in tasks:
        os.kill(pid, 9)


def release_requeued(env, job: str, process: subprocess.Popen) -> None:
    """SLURM holds a requeued job for 121 s before it may start again; move its start to now."""
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        reason = subprocess.run(["squeue", "--noheader", "-j", job, "-o", "%r"], env=env,
                                capture_output=True, text=True).stdout.strip()
        if reason == "BeginTime":
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=env,
                           check=True)
            return
        time.sleep(0.5)


@pytest.mark.parametrize("signal", ["TERM", "USR2", "KILL"])
def test_a_stopped_job_resumes_exactly_where_it_stopped(slurm_env, tmp_path, tiny_archive,
                                                         uninterrupted, signal):
    """TERM (scancel's, or SLURM's at a time limit): a checkpoint of the iteration reached,
    and the resubmitted sweep continues it. USR2 (SLURM's warning before a time limit): the
    same checkpoint, then submitit requeues the job, which continues it with no resubmission.
    KILL (the task killed by the kernel, not by SLURM): nothing saved; the resubmitted sweep
    continues from the last periodic checkpoint. The requeue's own SIGTERM to the job's step
    reaches the job while ``scontrol requeue`` still runs (SLOW_REQUEUE): it must not fail."""
    env = slurm_env
    if signal == "USR2":
        env = {**slurm_env, "PATH": f"{SLOW_REQUEUE}:{slurm_env['PATH']}"}
    log = tmp_path / "sweep.log"
    with log.open("w") as output:
        process = subprocess.Popen(sweep_command(tmp_path, tiny_archive, *LONG_RUN), cwd=ROOT,
                                   env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_iteration(tmp_path / "runs", 70, process)
        [job] = job_ids(tmp_path / "sweep")
        if signal == "KILL":
            kill_hard(slurm_env, job)
        else:
            subprocess.run(["scancel", f"--signal={signal}", job], env=slurm_env, check=True)
        if signal == "USR2":
            release_requeued(slurm_env, job, process)
        returncode = process.wait(timeout=600)
    finally:
        process.kill()
    [stopped] = records(tmp_path / "runs")
    stopped_at = stopped["attempts"][0].get("iterations")
    if signal == "USR2":
        assert returncode == 0, log.read_text()[-3000:]  # requeued: one submission
        assert stopped["status"] == "done"
        assert stopped["attempts"][0]["status"] == "interrupted"
        assert stopped["attempts"][1]["iterations_from"] == stopped_at >= 70
    else:
        assert returncode != 0 and stopped["status"] != "done"
        run_sweep(slurm_env, tmp_path, tiny_archive, *LONG_RUN)  # submitted again
    [record] = records(tmp_path / "runs")
    resumed_from = record["attempts"][1]["iterations_from"]
    if signal == "TERM":
        assert stopped["status"] == "interrupted" and stopped["error"] == "SIGTERM"
        assert resumed_from == stopped_at >= 70
    if signal == "KILL":
        assert resumed_from in (60, 120, 180)  # the last periodic checkpoint
    assert record["status"] == "done" and len(record["attempts"]) == 2
    assert job_states(slurm_env, [job]) <= {"COMPLETED", "FAILED", "CANCELLED"}
    assert_same_run(RunFolder(next((tmp_path / "runs").iterdir())), uninterrupted)


@pytest.fixture(scope="module")
def ddp_whole(tmp_path_factory, tiny_archive, slurm_env):
    """An uninterrupted 2-process DDP run (tests/scripts/ddp_stop.py) on this machine."""
    folder = tmp_path_factory.mktemp("ddp-whole")
    run_ddp_script(slurm_env, folder, tiny_archive, "whole", expect=0)
    [run] = (folder / "runs").iterdir()
    return RunFolder(run)


def run_ddp_script(env, folder: Path, tiny_archive: Path, how: str, expect: int) -> None:
    result = subprocess.run(
        [sys.executable, "tests/scripts/ddp_stop.py", str(folder / "runs"), str(tiny_archive),
         str(folder / "cache"), how], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={key: value for key, value in env.items() if not key.startswith("SLURM")})
    assert result.returncode == expect, result.stderr[-3000:]


def test_ddp_stopped_by_one_process_budget_or_signal_resumes_to_the_uninterrupted_run(
    slurm_env, tmp_path, tiny_archive, ddp_whole
):
    """The budget is spent on the first process only (iteration 1), then SIGTERM reaches the
    first process only (iteration 11, inside a logging window): both processes stop at the
    same iteration, each process's open window is kept, and the resumed run is the
    uninterrupted one, weights and curve."""
    run_ddp_script(slurm_env, tmp_path, tiny_archive, "budget", expect=75)
    run_ddp_script(slurm_env, tmp_path, tiny_archive, "signal@11", expect=75)
    run_ddp_script(slurm_env, tmp_path, tiny_archive, "resume", expect=0)
    [record] = records(tmp_path / "runs")
    assert attempts(record) == [(0, "interrupted"), (1, "interrupted"), (11, "done")]
    assert_same_run(RunFolder(next((tmp_path / "runs").iterdir())), ddp_whole)


def test_a_two_process_run_is_its_own_protocol_never_pooled_with_one_process_runs():
    one = compose_train(["profile=smoke", "seed=0"])
    two = compose_train(["profile=smoke", "seed=0", "trainer.devices=2", "trainer.strategy=ddp"])
    two_nodes = compose_train(["profile=smoke", "seed=1", "trainer.num_nodes=2",
                               "trainer.strategy=ddp"])
    assert run_key(one, "data") != run_key(two, "data")
    assert group_key(one, "data") != group_key(two, "data")  # never seeds of one protocol
    assert group_key(two, "data") == group_key(two_nodes, "data")  # processes, however placed


def test_ddp_as_one_slurm_job_of_two_tasks_trains_the_same_run(slurm_env, tmp_path,
                                                                tiny_archive, ddp_whole):
    """The same 2-process run, its processes started by SLURM (srun, 2 tasks) instead of by
    Lightning: Lightning reads SLURM's ranks, and the weights come out the same."""
    sys.path.insert(0, str(ROOT / "tests" / "scripts"))
    from ddp_stop import OVERRIDES
    given = {"threads", "trainer.enable_progress_bar"}  # by sweep_command already
    run_sweep(slurm_env, tmp_path, tiny_archive,
              *[o for o in OVERRIDES if o.split("=")[0] not in given])
    [record] = records(tmp_path / "runs")
    assert attempts(record) == [(0, "done")]
    assert record["attempts"][0]["host"]
    sbatch = next((tmp_path / "sweep" / "submitit").rglob("*_submission.sh")).read_text()
    assert "#SBATCH --ntasks-per-node=2" in sbatch and "gpus" not in sbatch
    assert_same_run(RunFolder(next((tmp_path / "runs").iterdir())), ddp_whole)
