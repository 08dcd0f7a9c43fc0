"""bf16 autocast on any machine, at the speed of its fp32 kernels where it has no bf16 ones.

Under bf16 autocast a convolution or linear layer takes bf16 operands, accumulates their
products in fp32 and rounds its result to bf16; batch norm, ReLU and the shortcut's sum then
work on bf16 tensors. CPUs without bf16 instructions (``BF16_FLAGS``: AMD EPYCs with AVX2
alone, for one) run torch's bf16 convolutions 12-25x slower than fp32 ones. There
``bf16_autocast`` computes the same arithmetic through fp32 kernels (``Fp32Kernels``): operands
rounded to bf16 (the product of two bf16 numbers is exact in fp32), sums in fp32, the result
rounded to bf16; autograd rounds the gradients through the same casts. What differs from a
native bf16 kernel is the order of the sums, as it differs between two native kernels
(tests/test_bf16.py measures both against fp64). The elementwise ops run on bf16 tensors as
they do everywhere. ``bf16_kernels`` (a top-level config key) chooses: auto (the above), native
or fp32 to force either; it changes speed, not what is computed, and is not part of a run's
identity.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

#: CPU flags of native bf16 arithmetic; without them ``bf16_autocast`` uses ``Fp32Kernels``.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")

#: The choices of ``bf16_kernels``.
KERNEL_CHOICES = ("auto", "native", "fp32")
#: The ops that bf16 autocast computes in bf16 and that the nets of this project call (einsum:
#: the fused nets' classifiers, whose bmm autocast lowers).
LOWER_PRECISION_OPS = frozenset({F.conv2d, F.linear, torch.einsum})


def bf16_flags(cpuinfo_text: str) -> list[str]:
    """The ``BF16_FLAGS`` of the first processor in the text of ``/proc/cpuinfo``."""
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo_text.splitlines()
                  if line.startswith("flags")), [])
    return [flag for flag in BF16_FLAGS if flag in flags]


@functools.cache
def cpuinfo() -> str:
    path = Path("/proc/cpuinfo")
    return path.read_text() if path.exists() else ""


def native_bf16(device_type: str) -> bool:
    """Whether ``device_type`` ("cpu", "cuda") computes bf16 natively here: a GPU does; a CPU
    with ``BF16_FLAGS`` does."""
    return device_type != "cpu" or bool(bf16_flags(cpuinfo()))


def kernels(precision: str, device_type: str, choice: str = "auto") -> str | None:
    """How ``precision`` computes on ``device_type`` here: "native" bf16 kernels or "fp32"
    kernels on bf16-rounded operands (``Fp32Kernels``) for ``bf16-mixed``; None otherwise.
    ``choice`` (``bf16_kernels``): auto picks native where the device has them."""
    if choice not in KERNEL_CHOICES:
        raise ValueError(f"bf16_kernels={choice}: use one of {', '.join(KERNEL_CHOICES)}")
    if precision != "bf16-mixed":
        return None
    if choice != "auto":
        return choice
    return "native" if native_bf16(device_type) else "fp32"


def bf16_rounded(value):
    """A floating-point tensor rounded to bf16 and held in fp32; anything else as it is."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(torch.bfloat16).float()
    return value


class Fp32Kernels(TorchFunctionMode):
    """Under bf16 autocast on ``device_type``, ``LOWER_PRECISION_OPS`` on bf16-rounded operands
    by fp32 kernels, their results rounded to bf16: bf16 arithmetic at fp32 speed (module
    docstring)."""

    def __init__(self, device_type: str = "cpu"):
        super().__init__()
        self.device_type = device_type

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in LOWER_PRECISION_OPS or not torch.is_autocast_enabled(self.device_type):
            return func(*args, **kwargs)
        with torch.autocast(self.device_type, enabled=False):
            result = func(*map(bf16_rounded, args),
                          **{name: bf16_rounded(value) for name, value in kwargs.items()})
        return result.to(torch.bfloat16)


@contextlib.contextmanager
def bf16_autocast(device_type: str, enabled: bool = True, choice: str = "auto",
                  **autocast) -> Iterator[None]:
    """``torch.autocast`` to bf16 on ``device_type`` (``autocast``: its other arguments),
    through ``Fp32Kernels`` where ``kernels`` says so (by default: where the device has no bf16
    arithmetic of its own)."""
    through_fp32 = enabled and kernels("bf16-mixed", device_type, choice) == "fp32"
    with (torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled, **autocast),
          Fp32Kernels(device_type) if through_fp32 else contextlib.nullcontext()):
        yield
