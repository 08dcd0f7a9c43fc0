"""make status: where runs of many hours stand, from what they wrote."""


import pytest

from resnet_repro.analysis.status import attempt_speeds, status_table
from resnet_repro.config import compose_train
from resnet_repro.runs import cpu_description, hardware
from resnet_repro.training.launch import Stopped, train

AVX2_EPYC = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2 fma\n"


def test_status_reports_progress_speed_and_time_left_of_a_stopped_run(smoke_overrides, tmp_path):
    cfg = compose_train([*smoke_overrides, "trainer.enable_progress_bar=false"])
    try:
        train(cfg, deadline=0.0)  # stops after its first iteration
    except Stopped:
        pass
    table = status_table(sorted(p.parent for p in (tmp_path / "runs").glob("*/run.json")))
    row = table.iloc[0]
    assert (row["net"], row["status"], row["iterations"], row["of"]) == \
        ("resnet-8", "interrupted", 1, 20)
    assert row["devices"] == hardware()["device"] and row["precision"] == "32-true"
    assert row["it_per_s_here"] > 0  # 19 iterations left at that speed (both rounded)
    assert row["minutes_left_here"] == pytest.approx(19 / row["it_per_s_here"] / 60, abs=0.06)


def test_attempt_speeds_count_each_attempt_from_where_it_began():
    attempts = [{"device": "gpu", "iterations": 1000, "wall_seconds": 10.0},
                {"device": "cpu", "iterations_from": 1000, "iterations": 1500,
                 "wall_seconds": 100.0},
                {"device": "cpu", "iterations_from": 1500}]  # running: not counted
    assert attempt_speeds(attempts) == [(("gpu", None), 1000, 10.0), (("cpu", None), 500, 100.0)]


def test_bf16_attempts_through_fp32_kernels_have_their_own_speed_on_one_cpu():
    before = {"device": "AMD EPYC [AVX2]", "precision": "bf16-mixed", "iterations": 196,
              "wall_seconds": 700.0}  # recorded before bf16_kernels: torch's kernels
    after = {**before, "bf16_kernels": "fp32", "iterations_from": 196, "iterations": 3196,
             "wall_seconds": 1000.0}
    assert attempt_speeds([before, after]) == [(("AMD EPYC [AVX2]", "native"), 196, 700.0),
                                               (("AMD EPYC [AVX2]", "fp32"), 3000, 1000.0)]


def test_a_run_not_yet_timed_here_takes_its_twins_speed():
    import pandas as pd

    from resnet_repro.analysis.status import estimate_speeds
    table = pd.DataFrame({
        "net": ["plain-20", "plain-56", "resnet-20", "resnet-56"],
        "status": ["done", "interrupted", "missing", "missing"],
        "iterations": [64000, 8000, 0, 0], "of": [64000, 64000, 64000, 64000],
        "precision": ["bf16-mixed", "bf16-mixed", "bf16-mixed", "32-true"],
        "it_per_s_here": [6.5, 2.5, None, None], "minutes_left_here": [0.0, 373.3, None, None]})
    estimated = estimate_speeds(table)
    assert list(estimated["speed_from"].fillna("-")) == ["itself", "itself", "plain-20", "-"]
    assert estimated.at[2, "minutes_left_here"] == round(64000 / 6.5 / 60, 1)
    assert pd.isna(estimated.at[3, "minutes_left_here"])  # fp32 resnet-56: no fp32 56 timed


def test_cpus_of_one_name_with_and_without_native_bf16_are_different_devices():
    with_bf16 = AVX2_EPYC.replace("avx2", "avx2 avx512f avx512_bf16")
    with_amx = with_bf16.replace("avx512_bf16", "amx_tile amx_bf16 avx512_bf16")
    assert cpu_description(AVX2_EPYC, "AVX2") == "AMD EPYC [AVX2]"
    assert cpu_description(with_bf16, "AVX512") == "AMD EPYC [AVX512, avx512_bf16]"
    assert cpu_description(with_amx, "AVX512") == "AMD EPYC [AVX512, avx512_bf16, amx_bf16]"


def test_the_speed_here_is_that_of_the_bf16_kernels_asked_for(tmp_path):
    import json

    from resnet_repro.analysis.status import run_status
    (tmp_path / "config.yaml").write_text("trainer:\n  precision: bf16-mixed\n")
    native = {"device": "AMD EPYC [AVX2]", "precision": "bf16-mixed", "bf16_kernels": "native",
              "iterations": 100, "wall_seconds": 100.0}
    through_fp32 = {**native, "bf16_kernels": "fp32", "iterations_from": 100, "iterations": 1100,
                    "wall_seconds": 500.0}
    (tmp_path / "run.json").write_text(json.dumps(
        {"net": "plain-56", "seed": 1, "status": "interrupted", "max_steps": 64000,
         "iterations": 1100, "attempts": [native, through_fp32]}))
    speed = {choice: run_status(tmp_path, "AMD EPYC [AVX2]", bf16_kernels=choice)["it_per_s_here"]
             for choice in ("native", "fp32")}
    assert speed == {"native": 1.0, "fp32": 2.0}
    with pytest.raises(ValueError, match="bf16_kernels=torch"):
        run_status(tmp_path, "AMD EPYC [AVX2]", bf16_kernels="torch")
