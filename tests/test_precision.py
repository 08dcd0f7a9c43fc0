"""The precision comparison's rule, on made-up final errors with known answers."""

import math

import pandas as pd

from resnet_repro.analysis.precision import (
    compare,
    compare_gaps,
    decision,
    predict_single_runs,
    steady_error_se,
)


def summary(shift: dict[str, float], gap_shift: float = 0.0) -> pd.DataFrame:
    """Three seeds (std 1) per net and precision; bf16 = fp32 + ``shift[net]``, plus
    ``gap_shift`` on bf16's plain-56."""
    base = {"plain-20": 38.0, "plain-56": 68.0, "resnet-20": 30.0, "resnet-56": 32.0}
    rows = []
    for net, level in base.items():
        for precision in ("32-true", "bf16-mixed"):
            extra = shift.get(net, 0.0) + (gap_shift if net == "plain-56" else 0.0) \
                if precision == "bf16-mixed" else 0.0
            rows += [{"net": net, "precision": precision, "seed": seed, "status": "done",
                      "train_error_last10": level + extra + seed - 1,
                      "test_error": level + extra + seed - 1} for seed in range(3)]
    return pd.DataFrame(rows)


def test_agreeing_precisions_allow_bf16():
    runs = summary({"resnet-56": 0.5})  # half a point: inside 2 SE (1.63)
    nets, gaps = compare(runs), compare_gaps(runs)
    assert len(nets) == 8 and nets["agree"].all() and gaps["agree"].all()
    assert nets.loc[nets["net"] == "resnet-56", "difference"].tolist() == [0.5, 0.5]
    assert "train with bf16 autocast" in decision(nets, gaps, predict_single_runs(runs))[0]


def test_a_net_that_moves_or_a_gap_that_moves_keeps_fp32():
    runs = summary({"plain-56": 3.0})  # 3 points: outside 2 SE
    nets, gaps = compare(runs), compare_gaps(runs)
    assert not nets.loc[nets["net"] == "plain-56", "agree"].any()
    assert not gaps["agree"].any()  # the gap moved with it: 30 against 33 (2 SE 2.31)
    assert gaps["fp32_gap"].tolist() == [30.0, 30.0] and gaps["bf16_gap"].tolist() == [33.0, 33.0]
    text = decision(nets, gaps, predict_single_runs(runs))[0]
    assert "disagree for plain-56 (training (last 10 windows)), plain-56 (test), the gap " \
           "(training (last 10 windows))" in text
    assert text.endswith("train in fp32.")


def test_one_seed_a_side_decides_nothing():
    runs = summary({})
    one_seed = runs[runs["seed"] == 0]
    assert compare(one_seed).empty and compare_gaps(one_seed).empty
    assert predict_single_runs(one_seed).empty
    assert decision(compare(one_seed), compare_gaps(one_seed),
                    predict_single_runs(one_seed))[0].startswith("No decision")


def test_one_fp32_run_is_judged_by_bf16s_prediction_interval():
    """bf16 seeds at 37, 38, 39 (std 1, n 3): 38 ± t(0.975, 2) = 4.30 x sqrt(4/3) = 4.97."""
    for shift, inside in ((4.9, True), (5.1, False)):
        runs = summary({})
        runs = runs[(runs["net"] == "plain-20") & ((runs["precision"] == "bf16-mixed")
                                                   | (runs["seed"] == 0))].copy()
        fp32 = runs["precision"] == "32-true"
        runs.loc[fp32, ["train_error_last10", "test_error"]] = 38.0 + shift
        single = predict_single_runs(runs)
        assert single["half_width"].tolist() == [4.97, 4.97]
        assert single["agree"].tolist() == [inside, inside]
        text = decision(compare(runs), compare_gaps(runs), single)[0]
        assert ("inside the other precision's 95 % prediction interval" in text) == inside
        assert (f"+{shift:.2f} points, interval ± 4.97" in text) == (not inside)


def test_a_runs_own_noise_is_the_standard_error_of_its_last_ten_training_windows():
    """Windows 1..20 at errors 50, ..., 50 then 1, ..., 10: only the last 10 count (sd 3.03)."""
    errors = [50.0] * 10 + [float(k) for k in range(1, 11)]
    curves = pd.DataFrame({"net": "plain-20", "group": "g", "seed": 0, "split": "train",
                           "iteration": range(100, 2100, 100), "error": errors})
    curves = pd.concat([curves, curves.assign(split="test", error=99.0)])
    runs = pd.DataFrame({"net": ["plain-20", "plain-56"], "group": ["g", "g"], "seed": [0, 0]})
    se = steady_error_se(curves.sample(frac=1, random_state=0), runs)
    assert abs(se[0] - 3.0277 / 10 ** 0.5) < 1e-3 and math.isnan(se[1])


def test_a_run_outside_the_interval_but_inside_its_own_noise_is_said_so():
    """bf16 seeds agreeing by chance (1.190, 1.193, 1.190: interval ± 0.01) against an fp32
    run whose own steady error is measured to ± 0.06 (2 SE)."""
    for fp32_error, within in ((1.25, True), (1.40, False)):
        runs = pd.DataFrame({"net": "plain-20", "seed": [0, 0, 1, 2],
                             "precision": ["32-true"] + ["bf16-mixed"] * 3,
                             "train_error_last10": [fp32_error, 1.190, 1.193, 1.190],
                             "train_error_last10_se": [0.03, 0.03, 0.03, 0.03],
                             "test_error": [9.3, 9.31, 9.43, 9.08]})
        single = predict_single_runs(runs)
        training = single[single["error"].str.startswith("training")].iloc[0]
        assert not training["agree"] and training["own_two_se"] == 0.06
        assert math.isnan(single[single["error"] == "test"]["own_two_se"].iloc[0])
        text = decision(compare(runs), compare_gaps(runs), single)[0]
        assert text.startswith("The single run lies outside")
        assert ("within the run's own noise" in text) == within
