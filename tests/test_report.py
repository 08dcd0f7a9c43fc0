import json
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from resnet_repro.analysis.report import readme

ROOT = Path(__file__).resolve().parents[1]


def summary(rows):
    columns = ["net", "depth", "shortcut", "seed", "train_error", "test_error"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(status="done", profile="cpu", dataset="cifar10-jpeg.tar.gz",
                        dataset_sha256="abc", iterations=1200, params=1, wall_seconds=60.0,
                        commit="deadbeef", dirty=False, hardware="cpu", run="x",
                        series=frame["net"], group="p-" + frame["net"],
                        train_error_last10=frame["train_error"])


def test_readme_states_degradation_and_what_shortcuts_do():
    text = readme("fig6", "cpu", summary([
        ("plain-20", 20, "plain", 0, 40.0, 38.0), ("plain-56", 56, "plain", 0, 66.0, 64.0),
        ("resnet-20", 20, "A", 0, 35.0, 33.0), ("resnet-56", 56, "A", 0, 30.0, 29.0),
    ]), "make reproduce-fig6")
    assert "plain nets, depth 20, 56: final training error 40.0, 66.0 %" in text
    assert ("Training error rises with every step in depth (26.0 points from depth 20 to 56): "
            "the degradation problem.") in text
    assert "Training error falls with every step in depth (5.0 points from depth 20 to 56)." \
        in text
    assert "depth 56: ResNet (option A) 30.0 % training, 29.0 % test error against plain " \
           "66.0 % and 64.0 %: the shortcuts lower both." in text
    assert "cifar10-jpeg" in text and "JPEG re-encoding" in text and "for quick tests" in text


def test_readme_never_pools_two_protocols_of_one_net():
    rows = summary([("plain-20", 20, "plain", 0, 40.0, 38.0), ("plain-56", 56, "plain", 0, 66.0,
                    64.0), ("plain-56", 56, "plain", 1, 10.0, 9.0)])
    rows.loc[2, ["group", "series"]] = ["other", "plain-56 [other]"]
    rows.loc[1, "series"] = "plain-56 [p-plain]"
    text = readme("fig6", "cpu", rows, "make reproduce-fig6")
    assert "run under several protocols (see summary.csv): plain-56 [other], plain-56 [p-plain]" \
        in text
    assert "final training error 40.0, 66.0" not in text and "38.0, 10.0" not in text


def test_seeds_of_the_papers_length_are_averaged_beside_the_paper_with_a_standard_error():
    rows = summary([("plain-20", 20, "plain", seed, 1.0 + seed, 9.0 + seed) for seed in range(3)]
                   + [("plain-56", 56, "plain", 0, 4.0, 12.0)]).assign(iterations=64000)
    rows["train_error_last10"] = [1.5, 2.5, 3.5, 4.5]
    text = readme("fig1", "paper", rows, "make reproduce-fig1")
    assert "| plain-20 | 1 | 1 | 64000 | 2.00 | 2.50 | 10.00 | 1.3 / 9.6 | +1.20 / +0.40 |" in text
    # mean 2.5 ± 1, n 3: minus the paper's one run 1.3, SE 1 x sqrt(1/3 + 1) = 1.15
    assert "| plain-20 | 3 | 2.50 ± 1.00 | 10.00 ± 1.00 | 1.3 / 9.6 | +1.20 ± 1.15 / " \
           "+0.40 ± 1.15 |" in text
    assert "| plain-56 | 1 | 4.50 | 12.00 | 5.6 / 13.3 | -1.10 / -1.30 |" in text
    assert "final training error 2.5, 4.5 %" in text  # the findings use the last 10 windows


def test_readme_averages_seeds_and_reports_when_shortcuts_do_not_help():
    text = readme("fig6", "cpu", summary([
        ("plain-20", 20, "plain", 0, 30.0, 30.0), ("plain-20", 20, "plain", 1, 34.0, 32.0),
        ("resnet-20", 20, "A", 0, 33.0, 20.0), ("resnet-20", 20, "A", 1, 33.0, 20.0),
    ]), "make reproduce-fig6")
    assert "against plain 32.0 % and 31.0 %: the shortcuts do not lower both." in text


def test_responses_are_compared_with_the_plain_twin(tmp_path):
    from resnet_repro.analysis import fig7
    from resnet_repro.analysis.context import Context

    rows = [(net, 20, shortcut, 0, layer, value) for net, shortcut, value in
            (("plain-20", "plain", 1.5), ("resnet-20", "A", 0.9)) for layer in (1, 2, 3)]
    responses = pd.DataFrame(rows, columns=["net", "depth", "shortcut", "seed", "layer", "std"])
    responses["series"] = responses["net"]
    curves = pd.DataFrame(columns=["net", "depth", "shortcut", "seed", "iteration", "split",
                                   "error"])
    base = summary([("plain-20", 20, "plain", 0, 40.0, 38.0), ("resnet-20", 20, "A", 0, 35.0, 33)])
    config = OmegaConf.create({"experiment_name": "fig7", "profile_name": "cpu"})
    context = Context(config, [], tmp_path, "make reproduce-fig7", [])
    context.tables = (curves, base)  # the runs' tables, given instead of read
    written = fig7.write(context, responses)
    text = written["readme"].read_text()
    assert "Mean response std over layers: resnet-20 0.900, plain-20 1.500." in text
    assert "depth 20: the ResNet's responses are smaller than the plain net's (0.900 against " \
           "1.500)." in text
    assert pd.read_csv(written["responses"]).shape == (6, 7) and written["png"].exists()


def test_readme_quotes_how_the_profile_differs_from_the_paper():
    from resnet_repro.config import protocol_description

    protocol = protocol_description("cifar10/cpu")
    assert protocol[0].startswith("The paper's schedule compressed 64000 -> 1200 iterations")
    text = readme("fig6", "cpu", summary([("plain-20", 20, "plain", 0, 40.0, 38.0)]),
                  "make reproduce-fig6", protocol=protocol)
    assert "- Profile `cpu`, as its config (conf/protocol/) describes it:" in text
    assert "  > The paper's schedule compressed 64000 -> 1200 iterations" in text


def test_a_partial_grid_is_said_plainly():
    rows = summary([("plain-20", 20, "plain", 0, 40.0, 38.0)])
    text = readme("fig6", "paper", rows, "make reproduce-fig6", left_out=["plain-32", "resnet-32"])
    assert "- A part of the experiment's grid: its plain-32, resnet-32 are left out" in text
    assert "A part of" not in readme("fig6", "paper", rows, "make reproduce-fig6")


def test_a_run_resumed_across_commits_and_machines_names_each():
    rows = summary([("plain-20", 20, "plain", 0, 1.1, 9.3),
                    ("plain-56", 56, "plain", 0, 5.0, 13.0)])
    rows["commit"] = ["18c3efa46d2a fad3e00383fc", "fad3e00383fc"]
    rows["hardware"] = ["AMD EPYC (cpu); NVIDIA H200 (gpu)", "AMD EPYC (cpu)"]
    rows["iterations"] = [64000.0, None]  # a float column, as beside a run not started
    text = readme("fig1", "paper", rows, "make reproduce-fig1")
    assert "- Code: commit 18c3efa46d, fad3e00383." in text
    assert "- Hardware: AMD EPYC (cpu), NVIDIA H200 (gpu)." in text
    assert "- Iterations: 64000 (the paper" in text


def test_a_run_of_the_papers_length_is_compared_with_the_paper_in_points():
    rows = summary([("plain-20", 20, "plain", 0, 1.09, 9.31),
                    ("plain-56", 56, "plain", 0, 4.0, 12.0)])
    rows["iterations"] = 64000
    rows.loc[1, "status"] = "running"
    text = readme("fig1", "paper", rows, "make reproduce-fig1")
    assert "ours - paper (train / test) |" in text
    assert "| 1.3 / 9.6 | -0.21 / -0.29 |" in text  # plain-20: 1.09 - 1.3, 9.31 - 9.6
    assert "| 5.6 / 13.3 |" not in text  # unfinished: in no table
    assert "Not finished, so in no figure, table or mean: plain-56 seed 0 (64,000 iterations" \
        in text
    assert "ours - paper" not in readme("fig1", "cpu", summary([("plain-20", 20, "plain", 0,
                                                                 39.8, 38.3)]), "make")


def test_a_depth_trend_of_the_papers_length_is_set_beside_the_papers():
    rows = summary([("plain-20", 20, "plain", 0, 1.09, 9.31),
                    ("plain-56", 56, "plain", 0, 3.92, 12.06)])
    rows["iterations"] = 64000
    text = readme("fig1", "paper", rows, "make reproduce-fig1")
    assert ("The paper at 64k: training error 1.3, 5.6 %, test error 9.6, 13.3 % (training 4.3, "
            "test 3.7 points from depth 20 to 56; ours: 1 seed per net, means, so the "
            "seed-to-seed spread is not measured).") in text
    two_seeds = summary([("plain-20", 20, "plain", 0, 1.09, 9.31),
                         ("plain-20", 20, "plain", 1, 1.08, 9.43),
                         ("plain-56", 56, "plain", 0, 3.92, 12.06)])
    two_seeds["iterations"] = 64000
    assert "ours: 2, 1 seeds per net, means; a net of one seed has no measured spread)." in \
        readme("fig1", "paper", two_seeds, "make reproduce-fig1")
    rows["iterations"] = 1200
    assert "The paper at 64k" not in readme("fig1", "cpu", rows, "make reproduce-fig1")


def test_an_analysis_of_part_of_the_grid_says_which_nets_it_left_out(tmp_path):
    from resnet_repro.analysis.context import Context
    from resnet_repro.analysis.nets import write_readme

    config = OmegaConf.create({"profile_name": "paper", "experiment_name": "lesion"})
    context = Context(config=config, runs=[], out_dir=tmp_path, command="make reproduce-lesion",
                      protocol=[], left_out=["plain-56", "resnet-56"])
    text = write_readme(context, "Lesion study", [], [], [], []).read_text()
    assert "- A part of the experiment's grid: its plain-56, resnet-56 are left out" in text
    context.left_out = []
    assert "A part of" not in write_readme(context, "Lesion study", [], [], [], []).read_text()


def test_an_analysis_of_trained_nets_stops_where_none_has_finished(tmp_path):
    from types import SimpleNamespace

    import pytest

    from resnet_repro.analysis.context import Context

    config = OmegaConf.create({"profile_name": "paper", "experiment_name": "lesion"})
    training = SimpleNamespace(done=False)
    context = Context(config, [training], tmp_path, "make reproduce-lesion", [])
    with pytest.raises(SystemExit, match=r"no finished runs to lesion: train them first "
                                         r"\(make reproduce-fig6 PROFILE=paper\)"):
        context.trained("lesion")
    done = SimpleNamespace(done=True)
    context.runs.append(done)
    assert context.trained("lesion") == [done]


def test_an_analysis_names_the_runs_of_its_sweep_that_have_not_finished():
    from types import SimpleNamespace

    from resnet_repro.analysis.nets import unfinished_note

    done = SimpleNamespace(done=True, net="resnet-20", name="d64d", iterations=64000,
                           max_steps=64000)
    training = SimpleNamespace(done=False, net="resnet-56", name="619e", iterations=41700,
                               max_steps=64000)
    missing = SimpleNamespace(done=False, net=None, name="abcd", iterations=None, max_steps=None)
    assert unfinished_note([done]) == []
    assert unfinished_note([done, training, missing]) == [
        "- Not finished training, so left out of the analysis: resnet-56 (run 619e, 41700 of "
        "64000 iterations), a run not started (run abcd, 0 of ? iterations)."]


def test_the_results_index_is_written_from_the_folders(tmp_path):
    from resnet_repro.analysis.index import write_index
    sweep = tmp_path / "fig1" / "paper"
    sweep.mkdir(parents=True)
    (sweep / "README.md").write_text("# fig1, profile `paper`\n")
    pd.DataFrame({"status": ["done", "running", "done"]}).to_csv(sweep / "summary.csv")
    lesion = tmp_path / "lesion" / "cpu"
    (lesion / "per_net").mkdir(parents=True)
    (lesion / "README.md").write_text("# lesion\n")
    (lesion / "per_net" / "abc.json").write_text('{"net": "resnet-56"}')
    landscape = tmp_path / "landscape" / "cpu"
    (landscape / "per_net").mkdir(parents=True)
    (landscape / "README.md").write_text("# landscape\n")
    for key, net in enumerate(["resnet-20", "plain-20", "resnet-20", "plain-56", "resnet-20"]):
        (landscape / "per_net" / f"{key}.json").write_text(json.dumps({"net": net}))
    (tmp_path / "fig1" / "smoke").mkdir()
    (tmp_path / "fig1" / "smoke" / "README.md").write_text("# not committed\n")
    text = write_index(tmp_path, ROOT / "conf").read_text()
    assert "| [fig1/paper](fig1/paper/) | Figure 1: training (left) and test (right) error of " \
           "plain-20 and plain-56 on CIFAR-10. | paper | 2 of 3 runs finished |" in text
    assert "| [lesion/cpu](lesion/cpu/) | The lesion study (Veit et al. 2016): blocks deleted " \
           "from trained ResNets" in text and "| cpu | 1 net: resnet-56 |" in text
    assert "| cpu | 5 nets: plain-20, plain-56, resnet-20 ×3 |" in text
    assert "smoke" not in text
    assert "At the paper's schedule (64,000 iterations): fig1." in text


def test_a_window_lost_at_a_stop_is_named_with_the_attempt_that_stopped_on_it():
    from types import SimpleNamespace

    from resnet_repro.analysis.collect import missing_windows
    curves = pd.DataFrame({"split": "train", "iteration": [100, 200, 400, 500, 700]})
    run = SimpleNamespace(done=True, attempts=({"iterations": 300}, {"iterations": 800}))
    assert missing_windows(run, curves) == "300 (attempt 1 stopped there); 600"
    assert missing_windows(run, curves[curves["iteration"] <= 200]) == ""
    rows = summary([("resnet-56", 56, "A", 0, 0.1, 7.0)]).assign(
        missing_windows="38900 (attempt 3 stopped there)")
    assert "resnet-56 seed 0's training curve lacks the logging window ending at iteration " \
           "38900 (attempt 3 stopped there)" in readme("fig6", "paper", rows, "make")


def test_runs_that_took_bf16_through_fp32_kernels_are_named_with_how_many_iterations():
    from types import SimpleNamespace

    from resnet_repro.analysis.collect import fp32_kernel_iterations
    run = SimpleNamespace(attempts=(
        {"precision": "bf16-mixed", "iterations_from": 0, "iterations": 49315},
        {"precision": "bf16-mixed", "bf16_kernels": "native", "iterations_from": 49315,
         "iterations": 50000},
        {"precision": "bf16-mixed", "bf16_kernels": "fp32", "iterations_from": 50000,
         "iterations": 64000}))
    assert fp32_kernel_iterations(run) == 14000
    rows = summary([("resnet-20", 20, "A", 2, 0.7, 8.5), ("plain-20", 20, "plain", 2, 1.2, 9.3)])
    rows = rows.assign(precision="bf16-mixed", iterations=64000,
                       fp32_kernel_iterations=[14000, 0])
    text = readme("fig6", "paper", rows, "make")
    assert "through fp32 kernels" in text
    assert "for resnet-20 seed 2's 14,000 of 64,000 iterations." in text
    assert "plain-20 seed 2's" not in text
    assert "fp32 kernels" not in readme("fig6", "paper", rows.assign(fp32_kernel_iterations=0),
                                        "make")
