"""bf16 autocast through fp32 kernels (resnet_repro.bf16) against torch's own bf16 kernels."""

import contextlib

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from resnet_repro import bf16
from resnet_repro.bf16 import Fp32Kernels, bf16_autocast
from resnet_repro.models import CifarResNet
from resnet_repro.training import launch


def one_bf16_ulp(values: torch.Tensor) -> torch.Tensor:
    """The spacing of bf16 numbers at ``values`` (8 bits of mantissa)."""
    exponent = torch.frexp(values.float().abs().clamp_min(1e-30)).exponent
    return torch.ldexp(torch.ones_like(values, dtype=torch.float32), exponent - 8)


def test_a_convolution_through_fp32_kernels_is_torchs_bf16_convolution_to_the_last_bit():
    torch.manual_seed(0)
    images, weight = torch.randn(8, 16, 12, 12), torch.randn(32, 16, 3, 3) / 12
    with torch.autocast("cpu", dtype=torch.bfloat16):
        native = F.conv2d(images, weight, padding=1)
        with Fp32Kernels():
            through_fp32 = F.conv2d(images, weight, padding=1)
    assert native.dtype == through_fp32.dtype == torch.bfloat16
    difference = (through_fp32.float() - native.float()).abs()
    # the same products summed in another order: a rounding apart at most, mostly equal
    assert (difference <= one_bf16_ulp(native)).all()
    assert (difference == 0).float().mean() > 0.9
    fp32 = F.conv2d(images, weight, padding=1)
    assert (fp32 - native.float()).abs().max() > 0  # bf16 rounds: not fp32's result


def gradients(net: torch.nn.Module, images, labels, context) -> torch.Tensor:
    net.zero_grad()
    with context():
        logits = net(images)
    F.cross_entropy(logits.double(), labels).backward()
    return torch.cat([parameter.grad.flatten().double() for parameter in net.parameters()])


def test_a_resnet_trains_in_bf16_as_precisely_through_fp32_kernels_as_natively():
    torch.manual_seed(0)
    net = CifarResNet(depth=8, shortcut="A")
    images, labels = torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))

    def native():
        return torch.autocast("cpu", dtype=torch.bfloat16)

    @contextlib.contextmanager
    def through_fp32():
        with native(), Fp32Kernels():
            yield

    exact = gradients(net.double(), images.double(), labels, torch.enable_grad)
    net.float()
    errors = {name: ((gradients(net, images, labels, context) - exact).norm() / exact.norm()).item()
              for name, context in [("fp32", torch.enable_grad), ("native bf16", native),
                                    ("bf16 through fp32", through_fp32)]}
    assert errors["native bf16"] > 20 * errors["fp32"]  # bf16 rounding dominates
    assert 0.7 < errors["bf16 through fp32"] / errors["native bf16"] < 1.4


def test_fp32_kernels_change_nothing_outside_autocast():
    torch.manual_seed(0)
    images, weight = torch.randn(2, 3, 8, 8), torch.randn(4, 3, 3, 3)
    with Fp32Kernels():
        inside = F.conv2d(images, weight)
    assert inside.dtype == torch.float32 and torch.equal(inside, F.conv2d(images, weight))


def through_fp32_kernels() -> bool:
    modes = torch.overrides._get_current_function_mode_stack()
    return any(isinstance(mode, Fp32Kernels) for mode in modes)


@pytest.mark.parametrize(("native", "choice", "through_fp32"), [
    (True, "auto", False), (False, "auto", True), (True, "fp32", True), (False, "native", False)])
def test_bf16_autocast_goes_through_fp32_kernels_without_native_bf16_or_when_told(
        native, choice, through_fp32, monkeypatch):
    monkeypatch.setattr(bf16, "native_bf16", lambda device_type: native)
    with bf16_autocast("cpu", choice=choice):
        assert torch.is_autocast_enabled("cpu")
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert through_fp32_kernels() == through_fp32
    with bf16_autocast("cpu", enabled=False, choice=choice):
        assert not torch.is_autocast_enabled("cpu") and not through_fp32_kernels()


def test_an_unknown_kernel_choice_names_the_choices():
    with pytest.raises(ValueError, match="bf16_kernels=fast: use one of auto, native, fp32"):
        bf16.kernels("bf16-mixed", "cpu", "fast")


def test_native_bf16_is_a_gpu_or_a_cpu_with_bf16_instructions(monkeypatch):
    monkeypatch.setattr(bf16, "cpuinfo", lambda: "flags\t: fpu avx2 avx512f\n")
    assert not bf16.native_bf16("cpu") and bf16.native_bf16("cuda")
    monkeypatch.setattr(bf16, "cpuinfo", lambda: "flags\t: fpu avx2 avx512f avx512_bf16\n")
    assert bf16.native_bf16("cpu")


@pytest.mark.parametrize(("precision", "native", "choice", "kernels"), [
    ("bf16-mixed", False, "auto", "fp32"), ("bf16-mixed", True, "auto", "native"),
    ("bf16-mixed", False, "native", "native"), ("32-true", False, "fp32", None)])
def test_a_trainer_in_bf16_without_bf16_instructions_goes_through_fp32_kernels(
        precision, native, choice, kernels, monkeypatch):
    monkeypatch.setattr(bf16, "native_bf16", lambda device_type: native)
    cfg = OmegaConf.create({"bf16_kernels": choice, "trainer": {
        "_target_": "pytorch_lightning.Trainer", "accelerator": "cpu", "precision": precision,
        "logger": False, "enable_checkpointing": False, "enable_progress_bar": False}})
    assert launch.bf16_kernels(cfg) == kernels
    plugin = launch.instantiate_trainer(cfg).precision_plugin
    assert isinstance(plugin, launch.Bf16ThroughFp32Kernels) == (kernels == "fp32")
