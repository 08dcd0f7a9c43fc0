"""An analysis keeps what it measured on each net, and a rerun measures only what it has not."""

from types import SimpleNamespace

import pandas as pd
import pytest
from omegaconf import OmegaConf

from resnet_repro.analysis import nets
from resnet_repro.analysis.nets import PER_NET, cost_line, measured_per_net, per_net_note


def context_in(folder, **budget):
    return SimpleNamespace(out_dir=folder, budget=OmegaConf.create({"images": 10, **budget}),
                           measured_now=[], read_back=[])


RUNS = [SimpleNamespace(name="aaaa", net="plain-8"), SimpleNamespace(name="bbbb", net="resnet-8")]


class Measure:
    """Tables of one row per net, counting the nets it measured; fails on the net named in
    ``fail_on``."""

    def __init__(self, fail_on=None):
        self.measured, self.fail_on = [], fail_on

    def __call__(self, run):
        if run.net == self.fail_on:
            raise RuntimeError("interrupted")
        self.measured.append(run.net)
        return {"errors": pd.DataFrame({"net": [run.net], "error": [len(self.measured) / 3]}),
                "curve": pd.DataFrame({"net": [run.net] * 2, "x": [0.5, 1.0]})}


def test_a_rerun_takes_each_net_from_what_was_kept(tmp_path):
    first = Measure()
    tables = measured_per_net(context_in(tmp_path), RUNS, first)
    assert first.measured == ["plain-8", "resnet-8"]
    assert tables["errors"]["net"].tolist() == ["plain-8", "resnet-8"]
    assert len(tables["curve"]) == 4
    again = Measure()
    kept = measured_per_net(context_in(tmp_path), RUNS, again)
    assert again.measured == []
    for name in ("errors", "curve"):
        pd.testing.assert_frame_equal(kept[name], tables[name])


def test_another_budget_measures_again(tmp_path):
    measured_per_net(context_in(tmp_path), RUNS, Measure())
    other = Measure()
    measured_per_net(context_in(tmp_path, images=20), RUNS, other)
    assert other.measured == ["plain-8", "resnet-8"]


def test_changed_measuring_code_measures_again(tmp_path, monkeypatch):
    measured_per_net(context_in(tmp_path), RUNS, Measure())
    monkeypatch.setattr(nets, "measuring_code", lambda measure: "changed")
    other, context = Measure(), context_in(tmp_path)
    measured_per_net(context, RUNS, other)
    assert other.measured == ["plain-8", "resnet-8"]
    assert context.measured_now == ["aaaa", "bbbb"] and context.read_back == []
    again = context_in(tmp_path)
    measured_per_net(again, RUNS, Measure())
    assert again.read_back == ["aaaa", "bbbb"] and "nothing measured again" in cost_line(again)


def test_an_interrupted_analysis_resumes_at_the_net_it_stopped_at(tmp_path):
    with pytest.raises(RuntimeError):
        measured_per_net(context_in(tmp_path), RUNS, Measure(fail_on="resnet-8"))
    assert sorted(p.name for p in (tmp_path / PER_NET).glob("*.json")) == ["aaaa.json"]
    resumed = Measure()
    tables = measured_per_net(context_in(tmp_path), RUNS, resumed)
    assert resumed.measured == ["resnet-8"]
    assert tables["errors"]["net"].tolist() == ["plain-8", "resnet-8"]


def test_the_readme_note_names_each_nets_cost_and_commit(tmp_path):
    measured_per_net(context_in(tmp_path), RUNS, Measure())
    lines = per_net_note(context_in(tmp_path), RUNS)
    assert lines[0].startswith("- Measured net by net, each kept in [per_net/]")
    assert [line.split(":")[0] for line in lines[1:]] == ["  - plain-8", "  - resnet-8"]
    assert all(" min on " in line and ", commit " in line for line in lines[1:])
