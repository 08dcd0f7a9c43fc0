"""The building blocks of section 3: shortcuts (options A, B, C), the basic block and the
bottleneck block, shared by the CIFAR-10 and the ImageNet networks.

Shortcuts (section 3.3):
    "A"  identity; where the width grows, extra zero channels, and where the map halves, a
         stride-2 subsample. No parameters, so plain and residual twins have equal counts.
    "B"  a 1x1 convolution with BN where the shape changes, identity elsewhere.
    "C"  a 1x1 convolution with BN on every shortcut.
    None the plain net: the same layers without any shortcut.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SHORTCUTS = ("A", "B", "C", None)


def check_shortcut(shortcut: str | None) -> None:
    if shortcut not in SHORTCUTS:
        raise ValueError(
            f"shortcut must be 'A', 'B', 'C' or None (plain, model.shortcut=null); got {shortcut!r}"
        )


class ShortcutA(nn.Module):
    """Option A: identity, subsampled by ``stride``, with zero channels appended up to ``planes``.

    The zero channels go after the input's channels, so the first ``in_planes`` output
    channels carry the input unchanged.
    """

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.extra_channels = planes - in_planes
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))


def conv3x3(in_planes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False)


def make_shortcut(kind: str | None, in_planes: int, planes: int, stride: int) -> nn.Module | None:
    """The shortcut of one block: ``None`` for a plain block."""
    if kind is None:
        return None
    same_shape = stride == 1 and in_planes == planes
    if same_shape and kind != "C":
        return nn.Identity()
    if kind == "A":
        return ShortcutA(in_planes, planes, stride)
    return nn.Sequential(conv1x1(in_planes, planes, stride), nn.BatchNorm2d(planes))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut (if any), then ReLU."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str | None, **_):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = make_shortcut(shortcut, in_planes, planes, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The block's function F(x): the response before the addition and the final ReLU."""
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.residual(x)
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class Bottleneck(BasicBlock):
    """1x1 (reduce to ``planes``) - 3x3 - 1x1 (restore to 4 x ``planes``), BN after each, ReLU
    between, plus the shortcut, then ReLU (Figure 5, right).

    The paper subsamples in the first 1x1 (``stride_on="1x1"``); torchvision's "v1.5" in the
    3x3 (``stride_on="3x3"``), which costs more multiply-adds and gives lower error.
    """

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str | None,
                 stride_on: str = "1x1"):
        nn.Module.__init__(self)
        if stride_on not in ("1x1", "3x3"):
            raise ValueError(f"stride_on must be '1x1' (the paper) or '3x3'; got {stride_on!r}")
        out_planes = planes * self.expansion
        self.conv1 = conv1x1(in_planes, planes, stride if stride_on == "1x1" else 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride if stride_on == "3x3" else 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_planes)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = make_shortcut(shortcut, in_planes, out_planes, stride)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


def he_init(net: nn.Module, mode: str) -> None:
    """He et al. 2015 ("Delving deep into rectifiers") for convolutions, BN at scale 1 and shift
    0. The paper does not state the fan mode; "fan_in" is that paper's forward case."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode=mode, nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
