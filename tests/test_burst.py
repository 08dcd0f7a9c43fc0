"""The GPU lease's plumbing on CPU: the priority list, fused groups, the trip back (pack and
unpack) and the device's limits (the whole burst runs at the smoke profile in CI)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_repro.training import burst
from resnet_repro.training.burst import fused_groups, pack, priority_configs, unpack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import lease  # noqa: E402


def names(configs) -> list[str]:
    return [f"{'plain' if c.model.shortcut is None else 'resnet'}-{c.model.depth}/{c.seed}"
            for c in configs]


def test_figure1_and_its_twins_come_first_and_resnet_1202_waits(tmp_path):
    configs = priority_configs(["profile=paper", f"paths.runs={tmp_path}"])
    listed = names(configs)
    assert listed[:4] == ["plain-20/0", "plain-56/0", "resnet-20/0", "resnet-56/0"]
    assert listed[4:8] == ["plain-20/1", "plain-56/1", "resnet-20/1", "resnet-56/1"]
    assert len(set(listed)) == len(listed)  # runs shared by experiments listed once
    assert not any(name.split("/")[0].endswith("-1202") for name in listed)
    assert {f"resnet-110/{seed}" for seed in range(5)} <= set(listed)  # Table 6's five
    assert "plain-110/0" in listed  # Figure 7's


def test_groups_hold_one_depth_each_in_priority_order(tmp_path):
    configs = priority_configs(["profile=paper", f"paths.runs={tmp_path}"])
    groups = fused_groups(configs, "fingerprint", most=4)
    assert names(groups[0]) == ["plain-20/0", "resnet-20/0", "plain-20/1", "resnet-20/1"]
    assert names(groups[1])[:2] == ["plain-56/0", "resnet-56/0"]
    assert all(len({c.model.depth for c in group}) == 1 and len(group) <= 4
               for group in groups)
    assert sum(map(len, groups)) == len(configs)


def fake_run(folder: Path, iterations: int, status: str = "interrupted") -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"net": "resnet-20", "seed": 0,
                                                 "status": status, "iterations": iterations}))
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"x" * 1000)
    return folder


def test_the_trip_back_keeps_what_is_further_here(tmp_path):
    leased = tmp_path / "device" / "runs"
    folders = [fake_run(leased / "paper" / key, 5000) for key in ("new", "behind", "busy")]
    parts = pack(folders, tmp_path / "out", leased)
    assert [p.name for p in parts] == ["runs.tar.part0", "manifest.json"]
    here = tmp_path / "here" / "runs"
    fake_run(here / "paper" / "behind", 7000)
    fake_run(here / "paper" / "busy", 1000, status="running")
    lines = unpack(tmp_path / "out", here)
    assert json.loads((here / "paper" / "new" / "run.json").read_text())["iterations"] == 5000
    assert json.loads((here / "paper" / "behind" / "run.json").read_text())["iterations"] == 7000
    assert json.loads((here / "paper" / "busy" / "run.json").read_text())["status"] == "running"
    assert sum(line.startswith("kept") for line in lines) == 2


def test_a_pack_that_would_not_fit_the_trip_back_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(burst, "PACK_TOTAL_BYTES", 1500)
    folder = fake_run(tmp_path / "runs" / "paper" / "a", 10)
    with pytest.raises(ValueError, match="more than the trip back carries"):
        pack([folder, fake_run(tmp_path / "runs" / "paper" / "b", 10)], tmp_path / "out",
             tmp_path / "runs")


def test_the_lease_plan_is_checked_against_the_devices_limits():
    fine = {"carry": [".lease/data/part-00"], "command": "true", "travels_mib": 63.0}
    assert lease.check([fine]) == []
    problems = lease.check([{**fine, "travels_mib": 65.0},
                            {**fine, "command": "x" * 2001},
                            {**fine, "carry": [f"p{i}" for i in range(9)]}])
    assert [p.split()[1].removesuffix("'s") for p in problems] == ["1", "2", "3"]


def test_hiding_the_cpu_runs_for_a_lease_takes_them_out_of_the_index_and_back(
    tmp_path, monkeypatch
):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(lease.ROOT), str(clone)], check=True)
    monkeypatch.setattr(lease, "ROOT", clone)
    monkeypatch.setattr(lease, "HIDING", clone / ".lease" / "hiding")
    tracked = lease.git("ls-files", *lease.HIDDEN).splitlines()
    assert tracked  # the committed cpu runs
    before = lease.travelling_bytes([])
    lease.hide()
    assert lease.git("ls-files", *lease.HIDDEN) == ""
    assert lease.git("status", "--porcelain", "--untracked-files=all", *lease.HIDDEN).strip() \
        .splitlines() == [f"D  {path}" for path in tracked]  # staged removals, nothing untracked
    assert lease.travelling_bytes([]) < before
    assert all((clone / path).exists() for path in tracked)  # nothing deleted
    lease.restore()
    assert lease.git("ls-files", *lease.HIDDEN).splitlines() == tracked
    assert lease.git("status", "--porcelain", *lease.HIDDEN) == ""
    assert lease.BLOCK[0] not in lease.exclude_file().read_text()
