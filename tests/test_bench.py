from resnet_repro.bench import RATIOS, run_bench


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
