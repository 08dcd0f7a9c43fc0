"""Why residual nets work: the lesion study and the loss landscape."""

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from resnet_repro.analysis.context import Context
from resnet_repro.analysis.landscape import filter_normalized_direction, local_minima, loss_surface
from resnet_repro.analysis.lesion import lesion_errors, lesions
from resnet_repro.analysis.nets import BF16, FP32, evaluate, findings_of_short_runs, in_precision
from resnet_repro.models.surgery import block_inputs, forward_deleting, without_blocks

from .test_sweep import run_script
from .test_why import analysis_overrides, trained_like


@pytest.mark.parametrize("index", [1, 3, 6])  # in a stage, and the two downsampling blocks
def test_deleting_a_block_equals_running_the_net_without_it(index):
    net = trained_like("A")
    images = torch.randn(8, 3, 32, 32)
    lesioned = without_blocks(net, [index])
    with torch.no_grad():
        intact_inputs, lesioned_inputs = block_inputs(net, images), block_inputs(lesioned,
                                                                                 images)
        # the blocks before the deleted one see what they saw before; the others are unchanged
        for before in range(index + 1):
            torch.testing.assert_close(lesioned_inputs[before], intact_inputs[before])
        kept = [b for i, b in enumerate(net.blocks()) if i != index]
        assert all(a is not b for a, b in zip(lesioned.blocks(), net.blocks(), strict=True))
        x = intact_inputs[index]
        deleted = net.blocks()[index]
        x = torch.relu(deleted.shortcut(x))  # what is left of the block: its shortcut
        for block in kept[index:]:
            x = block(x)
        torch.testing.assert_close(lesioned(images), net.head(x))
        torch.testing.assert_close(forward_deleting(net, intact_inputs[index], {index}, index),
                                   lesioned(images))
    if index == 1:  # identity shortcut on a ReLU output: the block simply drops out
        with torch.no_grad():
            x = intact_inputs[1]
            for block in kept[1:]:
                x = block(x)
            torch.testing.assert_close(lesioned(images), net.head(x))


def test_lesion_errors_agree_with_evaluating_the_lesioned_copies():
    net = trained_like("A", depth=20)
    images, labels = torch.randn(40, 3, 32, 32), torch.randint(0, 10, (40,))
    cases = lesions(net, draws=2, generator=torch.Generator().manual_seed(0))
    assert [c["kind"] for c in cases[:10]] == ["intact"] + ["single"] * 9
    assert {c["k"] for c in cases if c["kind"] == "random"} == {1, 2, 3, 5, 7}
    keeping = {c["deleted"] for c in cases if c.get("pool") == "shape-keeping blocks"}
    assert all(3 not in d and 6 not in d for d in keeping)  # downsampling blocks left out
    errors = lesion_errors(net, images, labels, cases, batch_size=16)
    for case, error in zip(cases[:12], errors[:12], strict=True):
        assert error == pytest.approx(evaluate(without_blocks(net, case["deleted"]), images,
                                               labels)[1])


def test_a_filter_normalized_direction_has_each_filters_norm_and_no_bn_or_bias_part():
    net = trained_like("A", depth=20)
    direction = filter_normalized_direction(net, torch.Generator().manual_seed(0))
    for name, weight in net.named_parameters():
        if weight.dim() > 1:
            torch.testing.assert_close(direction[name].flatten(1).norm(dim=1),
                                       weight.detach().flatten(1).norm(dim=1))
            assert not torch.equal(direction[name], weight.detach())
        else:  # BN scales and shifts, the fc bias
            assert torch.count_nonzero(direction[name]) == 0
    again = filter_normalized_direction(net, torch.Generator().manual_seed(0))
    assert all(torch.equal(direction[n], again[n]) for n in direction)  # a fixed seed


def test_the_landscape_at_the_origin_is_the_trained_nets_loss_and_leaves_it_unchanged():
    net = trained_like(None, depth=20)
    images, labels = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))
    generator = torch.Generator().manual_seed(0)
    directions = [filter_normalized_direction(net, generator) for _ in range(2)]
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    surface = loss_surface(net, directions, [(0.0, 0.0), (0.5, -0.5)], images, labels, 16)
    assert surface[0] == evaluate(net, images, labels, 16)
    assert surface[1][0] != surface[0][0]
    assert all(torch.equal(p, before[n]) for n, p in net.named_parameters())


def test_local_minima_count_one_for_a_bowl_and_each_further_dip():
    axis = np.linspace(-1.0, 1.0, 5)
    points = pd.DataFrame([(a, b) for a in axis for b in axis], columns=["alpha", "beta"])
    bowl = points.assign(loss=points["alpha"] ** 2 + points["beta"] ** 2 + 0.1)
    assert local_minima(bowl) == [(0.0, 0.0, 0.1)]
    dip = bowl["alpha"].eq(1.0) & bowl["beta"].eq(-1.0)
    dented = bowl.assign(loss=bowl["loss"].mask(dip, 0.05))  # a corner below its 3 neighbours
    assert local_minima(dented) == [(1.0, -1.0, 0.05), (0.0, 0.0, 0.1)]  # lowest first
    ridge = bowl.assign(loss=bowl["loss"].mask(bowl["alpha"].eq(0.5) & bowl["beta"].eq(0.0), 0.1))
    assert local_minima(ridge) == []  # a tie is not below every neighbour


@pytest.fixture(scope="module")
def trained_pair(tiny_archive, tmp_path_factory):
    work = tmp_path_factory.mktemp("why-residual")
    common = analysis_overrides(tiny_archive, work)
    result = run_script("train.py", "-m", "experiment=lesion", "model.depth=14", *common,
                        cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    return work, common


def test_lesion_experiment_writes_its_figure(trained_pair):
    work, common = trained_pair
    result = run_script("analyze.py", "experiment=lesion", "model.depth=14", *common, cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    out = work / "results" / "lesion" / "smoke"
    table = pd.read_csv(out / "lesion.csv")
    singles = table[table["kind"] == "single"]
    assert sorted(singles["net"].unique()) == ["plain-14", "resnet-14"]
    assert singles.groupby("net").size().tolist() == [6, 6]
    medians = pd.read_csv(out / "lesion_random.csv")
    assert set(medians["net"]) == {"resnet-14"} and set(medians["k"]) == {1, 2, 3, 5}
    assert (out / "lesion.png").exists() and (out / "lesion.pdf").exists()
    readme = (out / "README.md").read_text()
    assert "post-activation" in readme and "- Evaluated in fp32." in readme
    assert "- On all 50 test images;" in readme  # the whole tiny test split: no "subset"
    assert "far from converged (the cpu profile's" in readme  # short runs' caveat


def test_landscape_experiment_writes_curves_and_contours(trained_pair):
    from resnet_repro.analysis.landscape import plot_contours, plot_curves
    work, common = trained_pair
    result = run_script("analyze.py", "experiment=landscape", "model.depth=14", *common,
                        "analysis.budget.precision=bf16-mixed", cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    out = work / "results" / "landscape" / "smoke"
    curves = pd.read_csv(out / "landscape_1d.csv")
    surfaces = pd.read_csv(out / "landscape_2d.csv")
    assert len(curves) == 2 * 5 and len(surfaces) == 2 * 9  # 2 nets, 5 and 3 x 3 points
    figure = plot_curves(curves, "1d")
    assert sorted(line.get_label() for line in figure.axes[0].get_lines()) == [
        "plain-14", "resnet-14"]
    contours = plot_contours(surfaces, "2d")
    titles = [axis.get_title() for axis in contours.axes if axis.get_title()]
    assert titles == ["plain-14", "resnet-14"]
    levels = [tuple(axis.collections[0].levels) if hasattr(axis.collections[0], "levels")
              else None for axis in contours.axes if axis.collections]
    assert len(levels) == 2 and levels[0] == levels[1]  # the same contour levels for both
    for name in ("landscape_1d", "landscape_2d"):
        assert (out / f"{name}.png").exists() and (out / f"{name}.pdf").exists()
    readme = (out / "README.md").read_text()
    assert "- On 64 training images (a fixed random subset of " in readme
    assert "Evaluated in bf16 autocast" in readme
    assert "  - plain-14: loss " in readme and "  - resnet-14: loss " in readme  # the fp32 check
    assert "local minima on the grid" in readme or "local minimum on the grid" in readme


def test_bf16_evaluation_is_autocast_close_to_fp32_and_leaves_the_weights_fp32():
    net = trained_like("A", depth=20)
    images, labels = torch.randn(48, 3, 32, 32), torch.randint(0, 10, (48,))
    fp32, bf16 = evaluate(net, images, labels, 16, FP32), evaluate(net, images, labels, 16, BF16)
    assert bf16[0] != fp32[0]  # bf16 arithmetic did run
    assert bf16[0] == pytest.approx(fp32[0], rel=0.02)
    assert all(p.dtype == torch.float32 for p in net.parameters())
    cases = lesions(net, draws=0, generator=torch.Generator())
    assert lesion_errors(net, images, labels, cases, 16, BF16)[0] == bf16[1]  # intact, alike
    with pytest.raises(ValueError, match="use 32-true or bf16-mixed"):
        in_precision(net, "16-mixed")


def test_a_paper_profile_readme_quotes_the_cpu_profiles_findings(tmp_path):
    cpu = tmp_path / "lesion" / "cpu"
    cpu.mkdir(parents=True)
    (cpu / "README.md").write_text("# Lesion\n\n## What it shows\n\n- resnet-56: 31 %\n"
                                   "  k=1 32 %.\n\nBeside Veit et al.: ...\n")

    def section(profile):
        return findings_of_short_runs(Context(
            config=OmegaConf.create({"profile_name": profile}), runs=[],
            out_dir=tmp_path / "lesion" / profile, command="make", protocol=[]))
    quoted = section("paper")
    assert quoted[0] == "## The same analysis on the `cpu` profile's nets"
    assert quoted[-3:] == ["> - resnet-56: 31 %", ">   k=1 32 %.", ""]
    assert section("cpu") == [] and section("smoke") == []
