"""K CIFAR nets of one depth as one model (in the manner of HFTA, Wang et al., MLSys 2021), so
that one device trains K runs at once where one small net leaves it mostly idle.

Run k's channels are the k-th slice of every layer: each convolution is grouped (``groups=K``),
each BatchNorm has K x C channels (so each run keeps its own statistics), the fully connected
layer is a batch of K matrices. The input holds each run's own images in its own channels
(B, K x 3, H, W), and the output is each run's logits (B, K, classes). A per-run 0/1 switch on
every shortcut (option A, which has no parameters) makes a run plain or residual, so a plain net
and its residual twin train side by side. ``from_nets`` and ``state_dicts`` convert from and to
K ordinary ``CifarResNet`` weights: what a fused step computes is each run's ordinary step, up
to the order of floating-point sums.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from resnet_repro.models.cifar import STAGE_WIDTHS, CifarResNet, blocks_per_stage


def grouped_conv3x3(runs: int, in_planes: int, planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(runs * in_planes, runs * planes, kernel_size=3, stride=stride, padding=1,
                     bias=False, groups=runs)


class FusedBasicBlock(nn.Module):
    """K basic blocks: conv3x3-BN-ReLU-conv3x3-BN, plus gate x option A shortcut, then ReLU."""

    def __init__(self, runs: int, in_planes: int, planes: int, stride: int,
                 gates: torch.Tensor):
        super().__init__()
        self.runs, self.in_planes, self.planes, self.stride = runs, in_planes, planes, stride
        self.conv1 = grouped_conv3x3(runs, in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(runs * planes)
        self.conv2 = grouped_conv3x3(runs, planes, planes)
        self.bn2 = nn.BatchNorm2d(runs * planes)
        self.register_buffer("gate", gates.float().repeat_interleave(planes).view(1, -1, 1, 1),
                             persistent=False)  # set by the runs' kinds, not learned

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Option A per run: subsampled, zero channels appended after each run's own."""
        x = x[:, :, :: self.stride, :: self.stride]
        batch, _, height, width = x.shape
        x = x.reshape(batch, self.runs, self.in_planes, height, width)
        x = F.pad(x, (0, 0, 0, 0, 0, self.planes - self.in_planes))
        return x.reshape(batch, self.runs * self.planes, height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + self.gate * self.shortcut(x))


class FusedCifarResNet(nn.Module):
    """K CIFAR nets of ``depth`` (6n+2); ``residual[k]`` says whether run k has shortcuts."""

    def __init__(self, depth: int, residual: list[bool], num_classes: int = 10):
        super().__init__()
        runs, n = len(residual), blocks_per_stage(depth)
        self.depth, self.runs, self.residual = depth, runs, list(residual)
        gates = torch.tensor(residual)
        self.conv1 = grouped_conv3x3(runs, 3, STAGE_WIDTHS[0])
        self.bn1 = nn.BatchNorm2d(runs * STAGE_WIDTHS[0])
        stages, in_planes = [], STAGE_WIDTHS[0]
        for index, planes in enumerate(STAGE_WIDTHS):
            blocks = []
            for block_index in range(n):
                stride = 2 if index > 0 and block_index == 0 else 1
                blocks.append(FusedBasicBlock(runs, in_planes, planes, stride, gates))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.fc_weight = nn.Parameter(torch.zeros(runs, num_classes, in_planes))
        self.fc_bias = nn.Parameter(torch.zeros(runs, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, K x 3, H, W) -> (B, K, classes)."""
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.stage3(self.stage2(self.stage1(x)))
        pooled = F.adaptive_avg_pool2d(x, 1).flatten(1).view(x.shape[0], self.runs, -1)
        return torch.einsum("bkc,koc->bko", pooled, self.fc_weight) + self.fc_bias

    @classmethod
    def from_nets(cls, nets: list[CifarResNet]) -> FusedCifarResNet:
        """The K nets (one depth, option A or plain) as one fused model, weights copied."""
        if len({net.depth for net in nets}) != 1:
            raise ValueError(f"fused nets need one depth; got {[net.depth for net in nets]}")
        if any(net.shortcut not in ("A", None) for net in nets):
            raise ValueError("fused nets are plain or option A (no shortcut parameters)")
        fused = cls(nets[0].depth, [net.shortcut == "A" for net in nets],
                    nets[0].fc.out_features)
        fused.load_state_dict(fuse_state_dicts([net.state_dict() for net in nets]))
        return fused

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        """Each run's weights as an ordinary ``CifarResNet`` state_dict."""
        return split_state_dict(self.state_dict(), self.runs)


def fuse_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """K ordinary state_dicts -> the fused one: slices concatenated along the first axis, the
    fully connected layer stacked, one BN step counter (the runs step together)."""
    fused = {}
    for name, first in states[0].items():
        if name.startswith("fc."):
            fused[f"fc_{name[3:]}"] = torch.stack([state[name] for state in states])
        elif name.endswith("num_batches_tracked"):
            fused[name] = first.clone()
        else:
            fused[name] = torch.cat([state[name] for state in states])
    return fused


def split_state_dict(fused: dict[str, torch.Tensor], runs: int) -> list[dict[str, torch.Tensor]]:
    """The fused state_dict -> K ordinary ones."""
    states: list[dict[str, torch.Tensor]] = [{} for _ in range(runs)]
    for name, value in fused.items():
        for k, state in enumerate(states):
            if name.startswith("fc_"):
                state[f"fc.{name[3:]}"] = value[k].clone()
            elif name.endswith("num_batches_tracked"):
                state[name] = value.clone()
            else:
                state[name] = value.chunk(runs)[k].clone()
    return states
