import pytest
import torch
import torchvision

from resnet_repro.models import Bottleneck, ImageNetResNet, ShortcutA, multiply_adds

TABLE1_GIGA_MULTIPLY_ADDS = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}


def count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def on_meta(*args, **kwargs) -> ImageNetResNet:
    with torch.device("meta"):
        return ImageNetResNet(*args, **kwargs)


@pytest.mark.parametrize("depth", sorted(TABLE1_GIGA_MULTIPLY_ADDS))
def test_option_b_parameter_counts_equal_torchvisions(depth):
    with torch.device("meta"):
        reference = getattr(torchvision.models, f"resnet{depth}")()
    assert count(on_meta(depth, shortcut="B")) == count(reference)


@pytest.mark.parametrize("depth", sorted(TABLE1_GIGA_MULTIPLY_ADDS))
def test_multiply_adds_match_table1_within_3_percent(depth):
    giga = multiply_adds(on_meta(depth, shortcut="B")) / 1e9
    assert giga == pytest.approx(TABLE1_GIGA_MULTIPLY_ADDS[depth], rel=0.03)


def test_stride_on_the_3x3_costs_more_as_in_torchvisions_v1_5():
    paper, v15 = multiply_adds(on_meta(50)), multiply_adds(on_meta(50, stride_on="3x3"))
    assert v15 / 1e9 == pytest.approx(4.09, abs=0.02) and paper < v15
    assert count(on_meta(50)) == count(on_meta(50, stride_on="3x3"))


def test_option_a_resnet34_has_exactly_plain34s_parameters():
    assert count(on_meta(34, shortcut="A")) == count(on_meta(34, shortcut=None))


def test_option_c_projects_every_shortcut_and_b_only_where_the_shape_changes():
    def projections(net):
        return sum(isinstance(b.shortcut, torch.nn.Sequential) for b in net.blocks())

    assert projections(on_meta(34, shortcut="B")) == 3
    assert projections(on_meta(34, shortcut="C")) == 16
    kinds = {type(b.shortcut).__name__ for b in on_meta(34, shortcut="A").blocks()}
    assert kinds == {"Identity", "ShortcutA"}


def test_bottleneck_subsamples_in_its_first_1x1_as_the_paper_does():
    block = Bottleneck(256, 128, stride=2, shortcut="B")
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    v15 = Bottleneck(256, 128, stride=2, shortcut="B", stride_on="3x3")
    assert v15.conv1.stride == (1, 1) and v15.conv2.stride == (2, 2)
    assert block(torch.randn(1, 256, 8, 8)).shape == (1, 512, 4, 4)


def test_option_a_bottleneck_pads_channels_without_subsampling_in_the_first_stage():
    net = on_meta(50, shortcut="A")
    first = net.conv2_x[0].shortcut
    assert isinstance(first, ShortcutA) and first.stride == 1 and first.extra_channels == 192


@pytest.mark.parametrize("shortcut", ["A", "B", "C", None])
def test_forward_gives_class_logits_at_any_input_size(shortcut):
    net = ImageNetResNet(18, shortcut=shortcut, num_classes=5).eval()
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 5)
    assert net(torch.randn(1, 3, 96, 80)).shape == (1, 5)


def test_names_carry_the_shortcut_option():
    assert on_meta(34, shortcut=None).name == "plain-34"
    assert on_meta(34, shortcut="A").name == "resnet-34-A"


@pytest.mark.parametrize("depth", [20, 35, "34"])
def test_depth_outside_table1_is_refused(depth):
    with pytest.raises(ValueError, match="Table 1"):
        ImageNetResNet(depth)


def torchvision_net(depth: int) -> torch.nn.Module:
    """torchvision's resnet<depth>, randomly initialised (nothing downloaded), with random
    BatchNorm affine parameters and running statistics, so that every layer's mapping shows."""
    torch.manual_seed(depth)
    reference = getattr(torchvision.models, f"resnet{depth}")()
    for module in reference.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor, low, high in ((module.weight, 0.8, 1.2), (module.bias, -0.1, 0.1),
                                      (module.running_mean, -0.1, 0.1),
                                      (module.running_var, 0.8, 1.2)):
                tensor.data.uniform_(low, high)
    return reference.eval()


def with_weights_of(reference: torch.nn.Module, depth: int, **options) -> ImageNetResNet:
    """The project's option-B net with ``reference``'s weights, tensor by tensor in order."""
    net = ImageNetResNet(depth, shortcut="B", **options)
    ours, theirs = net.state_dict(), reference.state_dict()
    assert len(ours) == len(theirs)
    for (name, tensor), (their_name, their_tensor) in zip(ours.items(), theirs.items(),
                                                          strict=True):
        assert tensor.shape == their_tensor.shape, (name, their_name)
        assert name.rsplit(".", 1)[1] == their_name.rsplit(".", 1)[1], (name, their_name)
    net.load_state_dict(dict(zip(ours, theirs.values(), strict=True)))
    return net.eval()


@pytest.mark.parametrize("depth", sorted(TABLE1_GIGA_MULTIPLY_ADDS))
def test_option_b_nets_compute_torchvisions_function(depth):
    """Same weights, same outputs (fp32, evaluation mode). torchvision's bottleneck subsamples
    in its 3x3 ("v1.5"); the paper's, the project's default, in its first 1x1: with that
    default the same weights compute another function (checked for ResNet-50)."""
    reference = torchvision_net(depth)
    options = {"stride_on": "3x3"} if depth >= 50 else {}
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = reference(images)
        scale = (expected[0] - expected[1]).abs().max()
        assert scale > 1e-3 * expected.abs().max()  # the outputs depend on the images
        torch.testing.assert_close(with_weights_of(reference, depth, **options)(images),
                                   expected, rtol=1e-5, atol=1e-5 * float(scale))
        if depth == 50:
            paper = with_weights_of(reference, depth)(images)
            assert (paper - expected).abs().max() > 0.1 * scale
