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


RUNS = [SimpleNamespace(name="aaaa", net="plain-8", seed=0),
        SimpleNamespace(name="bbbb", net="resnet-8", seed=0)]


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
    seeds = [*RUNS, SimpleNamespace(name="cccc", net="resnet-8", seed=1)]
    measured_per_net(context_in(tmp_path), seeds, Measure())
    assert [line.split(":")[0] for line in per_net_note(context_in(tmp_path), seeds)[1:]] == [
        "  - plain-8", "  - resnet-8 seed 0", "  - resnet-8 seed 1"]


def test_the_key_follows_the_code_that_measures_not_the_readme_beside_it(monkeypatch):
    import functools

    from resnet_repro.analysis import lesion
    from resnet_repro.analysis.nets import measuring_code, reached_code
    key = measuring_code(lesion.lesion_tables)
    assert measuring_code(functools.partial(lesion.lesion_tables, images=None)) == key
    sources = "\n".join(reached_code(lesion.lesion_tables))
    for measuring in ("def lesion_errors(", "def in_precision(", "def bf16_autocast(",
                      "def forward_deleting(", "ROUND = 32"):
        assert measuring in sources
    for reporting in ("def findings(", "def _singles_line(", "def precision_note(", "VEIT_"):
        assert reporting not in sources
    monkeypatch.setattr(lesion, "VEIT_INTACT", 7.0)  # read by the README alone
    assert measuring_code(lesion.lesion_tables) == key
    monkeypatch.setattr(lesion, "ROUND", 16)  # how many random deletions a round draws
    assert measuring_code(lesion.lesion_tables) != key


def test_measurements_are_re_keyed_with_a_reason_and_their_tables_kept(tmp_path):
    import json

    from resnet_repro.migrations import rekey_measurements
    measured_per_net(context_in(tmp_path), RUNS, Measure())
    per_net = tmp_path / PER_NET
    before = json.loads((per_net / "aaaa.json").read_text())
    old = before["measuring_code"]
    other = json.loads((per_net / "bbbb.json").read_text())
    (per_net / "bbbb.json").write_text(json.dumps({**other, "measuring_code": "elsewhere"}))
    tables = (per_net / "aaaa.errors.csv").read_text()
    assert rekey_measurements(per_net, {old: "new"}, "nothing measuring changed") == ["aaaa"]
    record = json.loads((per_net / "aaaa.json").read_text())
    assert record["measuring_code"] == "new"
    assert record["rekeyed"][0]["from"] == old
    assert record["rekeyed"][0]["reason"] == "nothing measuring changed"
    kept = {k: v for k, v in record.items() if k not in ("measuring_code", "rekeyed")}
    assert kept == {k: v for k, v in before.items() if k != "measuring_code"}
    assert (per_net / "aaaa.errors.csv").read_text() == tables
    assert json.loads((per_net / "bbbb.json").read_text())["measuring_code"] == "elsewhere"
    assert rekey_measurements(per_net, {old: "new"}, "again") == []



def test_the_committed_measurements_are_kept_under_the_code_that_measures_now():
    """What results/ keeps is read back by a rerun, not measured again for hours: a change to
    the code that measures either measures again or re-keys them (experiments/migrate.py)."""
    import json
    from pathlib import Path

    from resnet_repro.analysis import landscape, lesion
    from resnet_repro.analysis.nets import measuring_code
    results = Path(__file__).resolve().parents[1] / "results"
    measures = {"lesion": lesion.lesion_tables, "landscape": landscape.landscape_tables}
    for analysis, measure in measures.items():
        records = sorted(results.glob(f"{analysis}/*/{PER_NET}/*.json"))
        assert records, analysis
        for record in records:
            assert json.loads(record.read_text())["measuring_code"] == measuring_code(measure), \
                record
