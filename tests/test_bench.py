import json
import sys
from pathlib import Path

import pandas as pd

from resnet_repro.benchmarks.throughput import (
    NETS,
    RATIOS,
    run_bench,
    run_settings_bench,
    save_measurement,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import bench  # noqa: E402  (experiments/bench.py, the command)


def test_bench_measures_all_five_and_the_ratios(tiny_archive, tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_REPRO_CACHE", str(tmp_path))
    table = run_bench(str(tiny_archive), seconds=0.2, workers=0, nets=("resnet-20",))
    assert list(table["what"]) == [
        "bare_step", "our_loop", "torchvision_loop", "our_data", "torchvision_data"]
    assert (table["net"] == "resnet-20").all() and (table["img_per_s"] > 0).all()
    rates = table.set_index("what")["img_per_s"]
    for what, reference in RATIOS.items():
        ratio = table.set_index("what").loc[what, "ratio"]
        assert abs(ratio - rates[what] / rates[reference]) < 0.01


def test_a_measurement_is_saved_with_its_settings_commit_and_hardware(tmp_path):
    written = save_measurement(pd.DataFrame({"workers": [2], "images_per_second": [487.5]}),
                               tmp_path / "out" / "cpu", {"data": "synthetic"})
    assert [p.name for p in written] == ["cpu.csv", "cpu.json"]
    record = json.loads(written[1].read_text())
    assert record["data"] == "synthetic" and {"commit", "dirty", "device"} <= set(record)
    assert pd.read_csv(written[0])["images_per_second"].tolist() == [487.5]


def test_settings_bench_sets_each_loop_beside_its_bare_step_and_the_default_loop(tiny_archive,
                                                                                 tmp_path,
                                                                                 monkeypatch):
    monkeypatch.setenv("RESNET_REPRO_CACHE", str(tmp_path))
    # the smallest ResNet, to keep the bench's spans short
    monkeypatch.setitem(NETS, "resnet-8", 8)
    table = run_settings_bench(str(tiny_archive), seconds=0.3, nets=("resnet-8",),
                               settings=("fp32", "bf16"))
    assert list(table["setting"]) == ["fp32", "bf16"]
    assert (table[["bare_step", "our_loop"]] > 0).all().all()
    assert (table["evaluation_s"] >= 0).all()  # the tiny test split can take under 0.05 s
    ratios = table["our_loop"] / table["bare_step"]
    assert ((table["loop_vs_bare"] - ratios).abs() < 0.01).all()
    assert table["loop_vs_default_loop"].iloc[0] == 1.0
    expected = table["our_loop"].iloc[1] / table["our_loop"].iloc[0]
    assert abs(table["loop_vs_default_loop"].iloc[1] - expected) < 0.01
    per_run = table["evaluation_s"] * 64  # evaluation_s is rounded to 0.1 s: 3.2 s at most
    assert ((table["evaluations_per_paper_run_s"] - per_run).abs() <= 3.7).all()


def test_the_bench_command_measures_only_the_settings_asked_for(tmp_path, monkeypatch):
    asked = []

    def fake_settings_bench(source, seconds, nets, settings):
        asked.append((nets, settings))
        return pd.DataFrame({"net": ["resnet-20"] * len(settings), "setting": list(settings)})

    monkeypatch.setattr(bench, "run_settings_bench", fake_settings_bench)
    bench.main(["--only", "settings", "--nets", "resnet-20", "--settings", "fp32", "bf16",
                "--out", str(tmp_path)])
    assert asked == [(("resnet-20",), ("fp32", "bf16"))]
    record = json.loads((tmp_path / "cpu-settings.json").read_text())
    assert list(record["settings"]) == ["fp32", "bf16"]
