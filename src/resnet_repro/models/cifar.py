"""The CIFAR-10 networks of section 4.2, plain and residual, built by one class.

    output map size | 32x32 | 16x16 | 8x8
    # layers        | 1+2n  | 2n    | 2n
    # filters       | 16    | 32    | 64

A 3x3 conv with 16 filters, three stages of ``n`` basic blocks (two 3x3 convs each; the first
conv of stages 2 and 3 has stride 2), global average pooling, a 10-way fully connected layer:
6n+2 weighted layers. n = 3, 5, 7, 9, 18, 200 gives depth 20, 32, 44, 56, 110, 1202.

Shortcuts (section 3.3):
    "A"  identity; where the width doubles, extra zero channels, and where the map halves, a
         stride-2 subsample. No parameters, so plain and residual twins have equal counts.
    "B"  a 1x1 convolution with BN where the shape changes, identity elsewhere.
    None the plain net: the same layers without any shortcut.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SHORTCUTS = ("A", "B", None)
STAGE_WIDTHS = (16, 32, 64)


def blocks_per_stage(depth: int) -> int:
    """n for a net of depth 6n+2; a clear error for any other depth."""
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        valid = ", ".join(str(6 * n + 2) for n in (3, 5, 7, 9, 18, 200))
        raise ValueError(
            f"CIFAR depth must be 6n+2 with n >= 1 (e.g. {valid}); got {depth!r}. "
            "Set model.depth to one of these."
        )
    return (depth - 2) // 6


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


def make_shortcut(kind: str | None, in_planes: int, planes: int, stride: int) -> nn.Module | None:
    """The shortcut of one block: ``None`` for a plain block."""
    if kind is None:
        return None
    if stride == 1 and in_planes == planes:
        return nn.Identity()
    if kind == "A":
        return ShortcutA(in_planes, planes, stride)
    return nn.Sequential(
        nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(planes),
    )


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN, plus the shortcut (if any), then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str | None):
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


class CifarResNet(nn.Module):
    """A plain (``shortcut=None``) or residual CIFAR net of ``depth`` = 6n+2 layers.

    Weights use He et al. 2015 initialisation ("Delving deep into rectifiers"); the paper does
    not state the fan mode, ``init_mode`` chooses it ("fan_in" is that paper's forward case).
    """

    def __init__(
        self,
        depth: int = 20,
        shortcut: str | None = "A",
        num_classes: int = 10,
        init_mode: str = "fan_in",
    ):
        super().__init__()
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be 'A', 'B' or None (plain); got {shortcut!r}")
        n = blocks_per_stage(depth)
        self.depth, self.shortcut = depth, shortcut
        self.conv1 = conv3x3(3, STAGE_WIDTHS[0])
        self.bn1 = nn.BatchNorm2d(STAGE_WIDTHS[0])
        stages, in_planes = [], STAGE_WIDTHS[0]
        for index, planes in enumerate(STAGE_WIDTHS):
            first_stride = 1 if index == 0 else 2
            blocks = []
            for block_index in range(n):
                stride = first_stride if block_index == 0 else 1
                blocks.append(BasicBlock(in_planes, planes, stride, shortcut))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.fc = nn.Linear(in_planes, num_classes)
        self._init_weights(init_mode)

    @property
    def name(self) -> str:
        return f"{'plain' if self.shortcut is None else 'resnet'}-{self.depth}"

    def _init_weights(self, mode: str) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode=mode, nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def blocks(self) -> list[BasicBlock]:
        """All basic blocks, input to output."""
        return [*self.stage1, *self.stage2, *self.stage3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
