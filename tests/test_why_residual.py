"""Why residual nets work: the lesion study and the loss landscape."""

from math import comb

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from resnet_repro.analysis import landscape
from resnet_repro.analysis.context import Context
from resnet_repro.analysis.landscape import (
    CONFIDENCE,
    checked_minima,
    dip,
    filter_normalized_direction,
    interior_minima,
    loss_surface,
    neighbourhood,
)
from resnet_repro.analysis.lesion import (
    ROUND,
    VEIT_BLOCKS,
    VEIT_INTACT,
    VEIT_MEDIANS,
    branch_norm_ratios,
    deletion_counts,
    lesion_errors,
    median_interval,
    random_deletions,
    random_medians,
    shape_keeping,
    single_cases,
    veit_median_at,
)
from resnet_repro.analysis.nets import BF16, FP32, evaluate, findings_of_short_runs, in_precision
from resnet_repro.models.surgery import (
    block_inputs,
    forward_deleting,
    identity_block,
    without_blocks,
)

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
    cases = single_cases(net) + [{"deleted": (1, 4, 8)}, {"deleted": (0, 2)}]
    assert [c.get("kind") for c in cases[:10]] == ["intact"] + ["single"] * 9
    assert shape_keeping(net) == [0, 1, 2, 4, 5, 7, 8]  # blocks 3 and 6 downsample
    errors = lesion_errors(net, images, labels, cases, batch_size=16)
    for case, error in zip(cases, errors, strict=True):
        assert error == pytest.approx(evaluate(without_blocks(net, case["deleted"]), images,
                                               labels)[1])


def test_deletion_counts_reach_veits_fractions_then_every_fifth_and_the_whole_pool():
    assert deletion_counts(7) == [1, 2, 3, 4, 5, 6, 7]
    assert deletion_counts(25) == [*range(1, 11), 15, 20, 25]
    assert deletion_counts(52)[-3:] == [45, 50, 52]


def _by_subset(cases):
    """A stand-in for measuring: an error that depends on the subset deleted."""
    return [{**c, "test_error": float(10 * sum(c["deleted"]) % 97)} for c in cases]


def test_random_deletions_take_every_subset_when_few_and_distinct_draws_up_to_the_cap():
    net = trained_like("A", depth=32)  # 5 blocks a stage: 13 shape-keeping blocks
    cases = random_deletions(net, _by_subset, cap=40, generator=torch.Generator().manual_seed(0))
    frame = pd.DataFrame(cases)
    for k, draws in frame.groupby("k"):
        subsets = draws["deleted"].tolist()
        assert len(set(subsets)) == len(subsets)  # distinct
        assert all(len(s) == k and set(s) <= set(shape_keeping(net)) for s in subsets)
        if comb(13, k) <= 40:  # k = 1, 12, 13: every subset, an exact median
            assert draws["exhaustive"].all() and len(subsets) == comb(13, k)
        else:  # spread errors: the interval stays wide, so drawn up to the cap
            assert not draws["exhaustive"].any() and len(subsets) == 40
    assert sorted(frame["k"].unique()) == deletion_counts(13)
    assert frame["fraction"].eq(frame["k"] / 13).all()


def test_random_deletions_stop_after_a_round_when_the_median_is_settled():
    net = trained_like("A", depth=32)
    steady = lambda cases: [{**c, "test_error": 20.0 + 0.01 * len(c["deleted"])} for c in cases]  # noqa: E731
    frame = pd.DataFrame(random_deletions(net, steady, cap=200,
                                          generator=torch.Generator().manual_seed(0)))
    sampled = frame[~frame["exhaustive"]].groupby("k").size()
    assert sampled.eq(ROUND).all()  # one round each: the interval is 0 wide
    medians = random_medians(frame.assign(kind="random", net="n", label="n", seed=0, depth=32))
    assert medians["ci_low"].eq(medians["median"]).all()


def test_a_net_of_several_seeds_is_told_seed_by_seed_and_across_them():
    from resnet_repro.analysis.lesion import findings

    def one_seed(seed, intact, downsampling):
        rows = [{"kind": "intact", "test_error": intact, "block": None, "downsampling": None}]
        rows += [{"kind": "single", "block": b, "downsampling": b in (4, 7),
                  "test_error": downsampling[(4, 7).index(b)] if b in (4, 7) else intact + b,
                  "branch_norm_ratio": 0.1 * b} for b in range(1, 10)]
        return pd.DataFrame(rows).assign(net="resnet-20", seed=seed,
                                         label=f"resnet-20 seed {seed}", depth=20)

    table = pd.concat([one_seed(0, 8.0, (60.0, 40.0)), one_seed(1, 9.0, (20.0, 14.0))])
    lines = findings(table, random_medians(table))
    assert lines[0].startswith("- resnet-20 seed 0 (intact: 8.0 %)")
    assert lines[1].startswith("- resnet-20 seed 1 (intact: 9.0 %)")
    assert lines[2] == (
        "- resnet-20 over its 2 seeds (0, 1; mean ± standard deviation): intact 8.0, 9.0 % "
        "(mean 8.5 ± 0.7); one shape-keeping block deleted, median 13.0, 14.0 % (mean 13.5 ± "
        "0.7); one downsampling block deleted, block 4 60.0, 20.0 % (mean 40.0 ± 28.3); block "
        "7 40.0, 14.0 % (mean 27.0 ± 18.4).")
    assert len(findings(table[table["seed"] == 0], random_medians(table))) == 1  # no across


def test_the_median_interval_holds_the_median_and_narrows_with_more_draws():
    values = np.random.default_rng(1).normal(30.0, 10.0, 400)
    low, high = median_interval(values[:40])
    assert low < np.median(values[:40]) < high
    wide, narrow = high - low, np.subtract(*median_interval(values)[::-1])
    assert narrow < wide / 2
    assert median_interval([5.0] * 10) == (5.0, 5.0)


def test_veits_median_is_compared_at_the_same_fraction_of_blocks():
    assert veit_median_at(0.0) == VEIT_INTACT
    assert veit_median_at(10 / VEIT_BLOCKS) == pytest.approx(VEIT_MEDIANS[10])
    assert veit_median_at(11.5 / VEIT_BLOCKS) == pytest.approx((19.0 + 29.6) / 2)
    assert veit_median_at(0.4) is None  # beyond their 20 of 52


def test_branch_norm_ratios_are_zero_for_an_identity_block_and_match_a_direct_computation():
    net = trained_like("A", depth=20)
    identity_block(net.blocks()[1])  # the branch outputs zero
    images = torch.randn(24, 3, 32, 32)
    ratios = branch_norm_ratios(net, images, batch_size=10)
    assert ratios[1] == 0.0
    with torch.no_grad():
        x = block_inputs(net, images)[3]  # a downsampling block: option A's zero channels
        block = net.blocks()[3]
        expected = block.residual(x).norm() / block.shortcut(x).norm()
    assert ratios[3] == pytest.approx(expected.item(), rel=1e-5)
    assert all(r > 0 for i, r in enumerate(ratios) if i != 1)


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


def _grid(loss, points=5):
    axis = np.linspace(-1.0, 1.0, points)
    frame = pd.DataFrame([(a, b) for a in axis for b in axis], columns=["alpha", "beta"])
    return frame.assign(loss=loss(frame["alpha"], frame["beta"]))


def test_interior_minima_count_a_bowl_and_a_dip_but_never_an_edge_point():
    bowl = _grid(lambda a, b: a ** 2 + b ** 2 + 0.1)
    assert interior_minima(bowl) == [(0.0, 0.0, 0.1)]
    corner = bowl["alpha"].eq(1.0) & bowl["beta"].eq(-1.0)
    assert interior_minima(bowl.assign(loss=bowl["loss"].mask(corner, 0.05))) == [
        (0.0, 0.0, 0.1)]  # an edge point below its 3 neighbours is not counted
    wide = _grid(lambda a, b: a ** 2 + b ** 2 + 0.1, points=9)
    inner = wide["alpha"].eq(0.75) & wide["beta"].eq(-0.75)
    dented = wide.assign(loss=wide["loss"].mask(inner, 0.05))
    assert interior_minima(dented) == [(0.75, -0.75, 0.05), (0.0, 0.0, 0.1)]  # lowest first
    ridge = bowl.assign(loss=bowl["loss"].mask(bowl["alpha"].eq(0.5) & bowl["beta"].eq(0.0), 0.1))
    assert interior_minima(ridge) == []  # a tie is not below every neighbour


def test_neighbourhood_has_its_inner_points_and_the_ring_around_them():
    points, inner, ring = neighbourhood(0.5, -0.5, 0.1, reach=2)
    assert len(points) == 25 and len(inner) == 9 and len(ring) == 16
    assert points[12] == (0.5, -0.5) and 12 in inner
    assert all(max(abs(points[n][0] - 0.5), abs(points[n][1] + 0.5)) == pytest.approx(0.2)
               for n in ring)


def test_a_dip_counts_only_where_it_is_larger_than_the_images_noise():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, (9, 500))  # each image's loss scatters by 1 around the mean
    shift = np.full((9, 1), 0.5)
    shift[4] = 0.0  # the centre lies 0.5 below its ring: 11 standard errors of a mean
    observed, confidence = dip(noise + shift, inner=[4], ring=[0, 1, 2, 3, 5, 6, 7, 8])
    assert observed > 0.3 and confidence >= CONFIDENCE
    shift[4] = 0.49  # 0.01 below: far inside the noise
    observed, confidence = dip(noise + shift, inner=[4], ring=[0, 1, 2, 3, 5, 6, 7, 8])
    assert confidence < CONFIDENCE


def test_checked_minima_confirm_a_real_basin_and_drop_a_dip_of_the_coarse_grid_alone(
        monkeypatch):
    """The surface (as bf16 on few images would draw it) shows the bowl's centre and a spurious
    dip; evaluated again image by image the loss is the smooth bowl plus noise."""
    rng = np.random.default_rng(0)

    def smooth_bowl(net, directions, coordinates, images, labels, batch_size):
        mean = np.array([[a ** 2 + b ** 2] for a, b in coordinates])
        return mean + rng.normal(0.0, 0.05, (len(coordinates), 400))

    monkeypatch.setattr(landscape, "image_losses", smooth_bowl)
    bowl = _grid(lambda a, b: a ** 2 + b ** 2, points=9)
    spurious = bowl["alpha"].eq(0.5) & bowl["beta"].eq(0.5)
    surface = bowl.assign(loss=bowl["loss"].mask(spurious, 0.1))
    rows = checked_minima(None, [], surface, None, None, 100, spacing=0.25)
    assert [(r["alpha"], r["beta"], r["confirmed"]) for r in rows] == [
        (0.0, 0.0, True), (0.5, 0.5, False)]
    assert rows[0]["fine_confidence"] >= CONFIDENCE and "fine_dip" not in rows[1]


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
    assert set(medians["net"]) == {"resnet-14"} and set(medians["k"]) == {1, 2, 3, 4}
    assert (out / "lesion.png").exists() and (out / "lesion.pdf").exists()
    readme = (out / "README.md").read_text()
    assert "post-activation" in readme and "- Evaluated in fp32." in readme
    assert "- On all 50 test images. Random" in readme  # the whole tiny test split: no "subset"
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
    minima = pd.read_csv(out / "landscape_minima.csv")
    assert len(curves) == 2 * 5 and len(surfaces) == 2 * 2 * 9  # 2 nets, 2 pairs, 3 x 3 points
    assert sorted(surfaces["pair"].unique()) == [0, 1]
    assert set(minima["alpha"]) <= {0.0} and minima["confirmed"].isin([True, False]).all()
    figure = plot_curves(curves, "1d")
    assert sorted(line.get_label() for line in figure.axes[0].get_lines()) == [
        "plain-14", "resnet-14"]
    contours = plot_contours(surfaces, minima, "2d")
    titles = [axis.get_title() for axis in contours.axes if axis.get_title()]
    assert titles == [f"{net}, direction pair {pair}" for net in ("plain-14", "resnet-14")
                      for pair in (0, 1)]
    levels = [tuple(axis.collections[0].levels) if hasattr(axis.collections[0], "levels")
              else None for axis in contours.axes if axis.collections]
    assert len(levels) == 4 and len(set(levels)) == 1  # the same contour levels for all
    for name in ("landscape_1d", "landscape_2d"):
        assert (out / f"{name}.png").exists() and (out / f"{name}.pdf").exists()
    readme = (out / "README.md").read_text()
    assert "- On 64 training images (a fixed random subset of " in readme
    assert "Evaluated in bf16 autocast" in readme
    assert "  - plain-14: loss " in readme and "  - resnet-14: loss " in readme  # the fp32 check
    assert "confirmed against the evaluation's noise: pair 0: " in readme
    assert "Confirmed per slice: " in readme and "3 x 3 (spacing 1, 25 times theirs)" in readme


def test_bf16_evaluation_is_autocast_close_to_fp32_and_leaves_the_weights_fp32():
    net = trained_like("A", depth=20)
    images, labels = torch.randn(48, 3, 32, 32), torch.randint(0, 10, (48,))
    fp32, bf16 = evaluate(net, images, labels, 16, FP32), evaluate(net, images, labels, 16, BF16)
    assert bf16[0] != fp32[0]  # bf16 arithmetic did run
    assert bf16[0] == pytest.approx(fp32[0], rel=0.02)
    assert all(p.dtype == torch.float32 for p in net.parameters())
    cases = single_cases(net)
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
