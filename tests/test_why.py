"""Why deep plain nets train worse: the gradient diagnostics and the identity construction."""

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from resnet_repro.analysis.gradients import gradient_norms, plot_gradients, trend
from resnet_repro.models import CifarResNet
from resnet_repro.models.surgery import deepen

from .test_sweep import run_script


def trained_like(shortcut, depth=20, seed=0) -> CifarResNet:
    """A net whose BN statistics and scales are not the defaults, as after training."""
    torch.manual_seed(seed)
    net = CifarResNet(depth, shortcut)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    net.train()
    net(torch.randn(64, 3, 32, 32))
    return net.eval()


@pytest.mark.parametrize("shortcut", [None, "A"])
def test_the_constructed_deep_net_computes_what_the_shallow_net_does(shortcut):
    shallow = trained_like(shortcut)
    deep = deepen(shallow, 56).eval()
    assert deep.depth == 56 and len(deep.blocks()) == 27
    images = torch.randn(16, 3, 32, 32)
    torch.testing.assert_close(deep(images), shallow(images), rtol=1e-5, atol=1e-5)
    # and it is a different, deeper function of its own weights: perturb an added block
    with torch.no_grad():
        deep.stage3[-1].bn2.bias.add_(0.5)
    assert not torch.allclose(deep(images), shallow(images), atol=1e-3)


def test_deepen_refuses_to_make_a_net_shallower():
    with pytest.raises(ValueError, match="deeper"):
        deepen(CifarResNet(56, None), 20)


def test_gradient_norms_equal_a_hand_computed_autograd_norm():
    torch.manual_seed(0)
    net = CifarResNet(8, "A")
    images, labels = torch.randn(12, 3, 32, 32), torch.randint(0, 10, (12,))
    table = gradient_norms(net, [(images, labels)])

    net.train()  # by hand: the block inputs as tensors of their own, then torch.autograd.grad
    x0 = F.relu(net.bn1(net.conv1(images)))
    x1 = net.stage1(x0)
    x2 = net.stage2(x1)
    logits = net.fc(torch.flatten(F.adaptive_avg_pool2d(net.stage3(x2), 1), 1))
    convs = [net.conv1.weight] + [w for b in net.blocks() for w in (b.conv1.weight,
                                                                     b.conv2.weight)]
    grads = torch.autograd.grad(F.cross_entropy(logits, labels), [*convs, x0, x1, x2])
    conv_rows = table[table["kind"] == "conv"]
    block_rows = table[table["kind"] == "block"]
    assert len(conv_rows) == 7 and len(block_rows) == 3
    assert conv_rows["grad_norm"].tolist() == pytest.approx([g.norm().item() for g in grads[:7]],
                                                            rel=1e-5)
    assert conv_rows["relative"].tolist() == pytest.approx(
        [g.norm().item() / w.norm().item() for g, w in zip(grads[:7], convs, strict=True)],
        rel=1e-5)
    assert block_rows["grad_norm"].tolist() == pytest.approx([g.norm().item()
                                                              for g in grads[7:]], rel=1e-5)
    assert block_rows["rms"].tolist() == pytest.approx(  # per element: the size taken out
        [g.square().mean().sqrt().item() for g in grads[7:]], rel=1e-5)


def test_the_trend_rule_names_vanishing_exploding_and_level():
    assert trend(pd.Series([0.01, 0.5, 1.0]))[1] == "vanish towards the input"
    assert trend(pd.Series([20.0, 5.0, 1.0]))[1] == "explode towards the input"
    assert trend(pd.Series([2.0, 1.0, 1.0])) == (2.0, "stay level")


def analysis_overrides(tiny_archive, work):
    return ["profile=smoke", f"data.source={tiny_archive}", f"data.cache_dir={work / 'cache'}",
            f"paths.runs={work / 'runs'}", f"paths.results={work / 'results'}",
            "trainer.enable_progress_bar=false"]


def test_gradients_experiment_draws_plain_against_residual_per_depth(tiny_archive,
                                                                      tmp_path):
    common = analysis_overrides(tiny_archive, tmp_path)
    grid = ["experiment=gradients", "model.depth=8", "analysis.init_depths=[8,14]"]
    assert run_script("train.py", "-m", *grid, *common, cwd=tmp_path).returncode == 0
    result = run_script("analyze.py", *grid, *common, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "results" / "gradients" / "smoke"
    assert (out / "gradients.png").stat().st_size > 0 and (out / "gradients.pdf").exists()
    table = pd.read_csv(out / "gradients.csv")
    figure = plot_gradients(table, "gradients")
    labels = {line.get_label() for line in figure.axes[0].get_lines()}
    assert labels == {"plain-8, initialization", "resnet-8, initialization",
                      "plain-8, final weights", "resnet-8, final weights"}
    assert all(axis.get_yscale() == "log" for axis in figure.axes)
    assert len(figure.axes) == 6  # three measures x depths 8 and 14
    readme = (out / "README.md").read_text()
    assert "plain-8 at initialization (2 seeds)" in readme and "the gradients" in readme


def test_identity_experiment_builds_evaluates_and_trains_on(tiny_archive, tmp_path):
    common = analysis_overrides(tiny_archive, tmp_path)
    fig6 = ["experiment=fig6", "model.depth=8,14"]
    assert run_script("train.py", "-m", *fig6, *common, cwd=tmp_path).returncode == 0
    grid = ["experiment=identity", "model.depth=14", "init.from_depth=8"]
    runs_before = set((tmp_path / "runs").iterdir())
    without = [*grid, "analysis.budget.identity_further_training=false"]
    assert run_script("train.py", "-m", *without, *common, cwd=tmp_path).returncode == 0
    assert set((tmp_path / "runs").iterdir()) == runs_before  # the sweep trained nothing
    result = run_script("analyze.py", *without, *common, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    readme = (tmp_path / "results" / "identity" / "smoke" / "README.md").read_text()
    assert "was not trained further" in readme
    assert "test error on all 50 test images" in readme  # the whole split, said so
    assert run_script("train.py", "-m", *grid, *common, cwd=tmp_path).returncode == 0
    result = run_script("analyze.py", *grid, *common, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    out = tmp_path / "results" / "identity" / "smoke"
    table = pd.read_csv(out / "identity.csv").set_index("net")
    for family in ("plain", "resnet"):
        shallow, constructed = f"trained {family}-8", f"{family}-8 + identity layers = 14"
        assert table.loc[constructed, "test_error"] == table.loc[shallow, "test_error"]
        assert table.loc[constructed, "train_error"] == table.loc[shallow, "train_error"]
    assert "trained plain-14, from scratch" in table.index
    assert (out / "identity.png").exists()
    assert "constructed plain net trained further" in (out / "README.md").read_text()
