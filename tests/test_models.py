import pytest
import torch

from resnet_repro.models import CifarResNet, ShortcutA

# ../shared/PAPER.md, section 4.2: BN included, no conv bias.
PAPER_PARAMS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962,
                1202: 19_421_274}


def count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("depth", sorted(PAPER_PARAMS))
def test_parameter_counts_equal_the_papers(depth):
    assert count(CifarResNet(depth, shortcut="A")) == PAPER_PARAMS[depth]


@pytest.mark.parametrize("depth", [20, 56, 110])
def test_plain_and_option_a_twins_have_equal_parameters(depth):
    assert count(CifarResNet(depth, shortcut=None)) == count(CifarResNet(depth, shortcut="A"))


def test_option_b_adds_projections_only_where_shapes_change():
    # two projections (16->32, 32->64), each a 1x1 conv and a BN (scale and shift)
    extra = (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert count(CifarResNet(20, shortcut="B")) == PAPER_PARAMS[20] + extra


def test_layer_count_is_depth():
    for depth in (20, 56):
        net = CifarResNet(depth, shortcut=None)
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
        assert len(convs) + len(linears) == depth


def test_option_a_shortcut_is_the_subsampled_zero_padded_input():
    x = torch.randn(2, 16, 8, 8)
    out = ShortcutA(16, 32, stride=2)(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(out[:, 16:]) == 0
    assert not list(ShortcutA(16, 32, 2).parameters())


def test_residual_blocks_use_option_a_where_width_grows_and_identity_elsewhere():
    net = CifarResNet(20, shortcut="A")
    kinds = [type(block.shortcut).__name__ for block in net.blocks()]
    assert kinds == ["Identity"] * 3 + ["ShortcutA", "Identity", "Identity"] * 2
    assert all(block.shortcut is None for block in CifarResNet(20, shortcut=None).blocks())


@pytest.mark.parametrize("shortcut", ["A", "B", None])
def test_forward_gives_ten_logits_per_image(shortcut):
    net = CifarResNet(20, shortcut=shortcut).eval()
    assert net(torch.randn(3, 3, 32, 32)).shape == (3, 10)


@pytest.mark.parametrize("depth", [19, 21, 0, 2, "20"])
def test_depth_that_is_not_6n_plus_2_is_refused(depth):
    with pytest.raises(ValueError, match="6n\\+2"):
        CifarResNet(depth)


def test_unknown_shortcut_is_refused():
    with pytest.raises(ValueError, match="shortcut"):
        CifarResNet(20, shortcut="D")


def test_names_follow_the_paper():
    assert CifarResNet(56, shortcut=None).name == "plain-56"
    assert CifarResNet(110, shortcut="A").name == "resnet-110"


def test_resnet_1202_takes_a_training_step():
    torch.manual_seed(0)
    net = CifarResNet(1202, shortcut="A")
    loss = torch.nn.functional.cross_entropy(net(torch.randn(2, 3, 32, 32)), torch.tensor([1, 2]))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
