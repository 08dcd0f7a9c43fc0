"""The ImageNet networks of Table 1, plain and residual, built by one class.

    layer   | output  | 18          | 34          | 50            | 101            | 152
    conv1   | 112x112 | 7x7, 64, stride 2; then 3x3 max pool, stride 2
    conv2_x | 56x56   | [3x3, 64]x2 | [3x3, 64]x3 | [1x1, 64 / 3x3, 64 / 1x1, 256] x3, x3, x3
    conv3_x | 28x28   | [3x3,128]x2 | [3x3,128]x4 | [1x1,128 / 3x3,128 / 1x1, 512] x4, x4, x8
    conv4_x | 14x14   | [3x3,256]x2 | [3x3,256]x6 | [1x1,256 / 3x3,256 / 1x1,1024] x6, x23, x36
    conv5_x | 7x7     | [3x3,512]x2 | [3x3,512]x3 | [1x1,512 / 3x3,512 / 1x1,2048] x3, x3, x3
            | 1x1     | average pool, 1000-d fc, softmax
    FLOPs   |         | 1.8e9       | 3.6e9       | 3.8e9         | 7.6e9          | 11.3e9

conv3_1, conv4_1 and conv5_1 subsample with stride 2. The paper's ImageNet comparisons use
option A for ResNet-18/34 (Table 2, Figure 4), A/B/C for ResNet-34 (Table 3) and option B for
50/101/152; with option B the parameter counts equal torchvision's ``resnet18``..``resnet152``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resnet_repro.models.blocks import BasicBlock, Bottleneck, check_shortcut, he_init

STAGE_WIDTHS = (64, 128, 256, 512)
#: Table 1: depth -> (block, blocks per stage).
ARCHITECTURES = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ImageNetResNet(nn.Module):
    """A plain (``shortcut=None``) or residual ImageNet net of ``depth`` 18, 34, 50, 101 or 152.

    ``stride_on`` places the bottleneck's subsampling: "1x1" (the paper) or "3x3" (torchvision).
    ``init_mode`` is the fan mode of the He initialisation (``blocks.he_init``).
    """

    def __init__(
        self,
        depth: int = 34,
        shortcut: str | None = "B",
        num_classes: int = 1000,
        stride_on: str = "1x1",
        init_mode: str = "fan_in",
    ):
        super().__init__()
        check_shortcut(shortcut)
        if depth not in ARCHITECTURES:
            raise ValueError(f"ImageNet depth must be one of {sorted(ARCHITECTURES)} (Table 1); "
                             f"got {depth!r}. Set model.depth to one of these.")
        block, counts = ARCHITECTURES[depth]
        self.depth, self.shortcut = depth, shortcut
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages, in_planes = [], 64
        for index, (planes, count) in enumerate(zip(STAGE_WIDTHS, counts, strict=True)):
            blocks = []
            for block_index in range(count):
                stride = 2 if index > 0 and block_index == 0 else 1
                blocks.append(block(in_planes, planes, stride, shortcut, stride_on=stride_on))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.conv2_x, self.conv3_x, self.conv4_x, self.conv5_x = stages
        self.fc = nn.Linear(in_planes, num_classes)
        he_init(self, init_mode)

    @property
    def name(self) -> str:
        """plain-34, resnet-34-A, ...: the shortcut option is part of an ImageNet net's name,
        since Table 3 compares them."""
        return f"plain-{self.depth}" if self.shortcut is None else \
            f"resnet-{self.depth}-{self.shortcut}"

    def blocks(self) -> list[BasicBlock]:
        """All blocks, input to output."""
        return [*self.conv2_x, *self.conv3_x, *self.conv4_x, *self.conv5_x]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fully convolutional up to the average pool: any input size of at least 32x32."""
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), kernel_size=3, stride=2, padding=1)
        x = self.conv5_x(self.conv4_x(self.conv3_x(self.conv2_x(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def multiply_adds(net: nn.Module, size: int = 224) -> int:
    """Multiply-adds of the convolutions and fully connected layers for one ``size`` x ``size``
    image (the paper's "FLOPs"), counted by running ``net`` once on its device; build it under
    ``torch.device("meta")`` to count without memory or compute."""
    total = 0

    def count(module: nn.Module, inputs, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kernel = module.in_channels // module.groups * module.kernel_size[0] * \
                module.kernel_size[1]
            total += output.numel() * kernel
        else:
            total += module.in_features * module.out_features

    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    handles = [layer.register_forward_hook(count) for layer in layers]
    try:
        device = next(net.parameters()).device
        with torch.no_grad():
            net(torch.zeros(1, 3, size, size, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return total
