"""The CIFAR-10 networks of section 4.2, plain and residual, built by one class.

    output map size | 32x32 | 16x16 | 8x8
    # layers        | 1+2n  | 2n    | 2n
    # filters       | 16    | 32    | 64

A 3x3 conv with 16 filters, three stages of ``n`` basic blocks (two 3x3 convs each; the first
conv of stages 2 and 3 has stride 2), global average pooling, a 10-way fully connected layer:
6n+2 weighted layers. n = 3, 5, 7, 9, 18, 200 gives depth 20, 32, 44, 56, 110, 1202.

Shortcuts: see ``resnet_repro.models.blocks``; the paper's CIFAR nets use option A.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resnet_repro.models.blocks import BasicBlock, check_shortcut, conv3x3, he_init

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


class CifarResNet(nn.Module):
    """A plain (``shortcut=None``) or residual CIFAR net of ``depth`` = 6n+2 layers.

    ``init_mode`` is the fan mode of the He initialisation (``blocks.he_init``).
    """

    def __init__(
        self,
        depth: int = 20,
        shortcut: str | None = "A",
        num_classes: int = 10,
        init_mode: str = "fan_in",
    ):
        super().__init__()
        check_shortcut(shortcut)
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
        he_init(self, init_mode)

    @property
    def name(self) -> str:
        return f"{'plain' if self.shortcut is None else 'resnet'}-{self.depth}"

    def blocks(self) -> list[BasicBlock]:
        """All basic blocks, input to output."""
        return [*self.stage1, *self.stage2, *self.stage3]

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """The first conv layer, before the blocks."""
        return F.relu(self.bn1(self.conv1(x)))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Global average pooling and the fully connected layer, after the blocks."""
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stage3(self.stage2(self.stage1(self.stem(x)))))
