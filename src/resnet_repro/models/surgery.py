"""Operations on trained CIFAR nets that the analyses use to explain them:

- ``deepen``: the identity construction of section 1. A deeper net of the same family made of
  a trained shallower one plus blocks that compute the identity (in evaluation mode), so it has
  exactly the shallower net's outputs: a solution at least as good as the shallow net exists
  at the greater depth.
- ``without_blocks``: the lesion study of Veit et al. (2016). Blocks deleted: the residual
  branch removed and the shortcut kept, so a block computes ReLU(shortcut(x)). A plain block has
  no shortcut; deleting it bypasses its layer pair with option A's mapping (identity, or
  subsample and zero channels where the shape changes).

Both return new nets and leave the given one untouched.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from resnet_repro.models.blocks import BasicBlock, ShortcutA
from resnet_repro.models.cifar import CifarResNet, blocks_per_stage


class DeletedBlock(nn.Module):
    """A block with its residual branch removed: ReLU(shortcut(x))."""

    def __init__(self, shortcut: nn.Module):
        super().__init__()
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.shortcut(x))


def _stages(net: CifarResNet) -> list[nn.Sequential]:
    return [net.stage1, net.stage2, net.stage3]


def block_slots(net: CifarResNet) -> list[tuple[nn.Sequential, int]]:
    """(stage, index in stage) of every block, input to output: ``net.blocks()``'s order."""
    return [(stage, index) for stage in _stages(net) for index in range(len(stage))]


def is_downsampling(block: BasicBlock) -> bool:
    """Whether the block changes the shape (the first block of stages 2 and 3)."""
    return block.conv1.stride != (1, 1) or block.conv1.in_channels != block.conv2.out_channels


def kept_path(block: BasicBlock) -> nn.Module:
    """What a deleted block keeps: its shortcut; a plain block, option A's mapping."""
    if block.shortcut is not None:
        return block.shortcut
    if not is_downsampling(block):
        return nn.Identity()
    return ShortcutA(block.conv1.in_channels, block.conv2.out_channels, block.conv1.stride[0])


def without_blocks(net: CifarResNet, indices) -> CifarResNet:
    """A copy of ``net`` with the blocks at ``indices`` (0 = first, ``net.blocks()``'s order)
    deleted: each computes ReLU(shortcut(x)) instead."""
    lesioned = copy.deepcopy(net)
    slots = block_slots(lesioned)
    for index in set(indices):
        stage, position = slots[index]
        stage[position] = DeletedBlock(kept_path(stage[position]))
    return lesioned


def block_inputs(net: CifarResNet, images: torch.Tensor) -> list[torch.Tensor]:
    """The input of every block for ``images``, input to output (one intact forward pass)."""
    inputs, x = [], net.stem(images)
    for block in net.blocks():
        inputs.append(x)
        x = block(x)
    return inputs


def forward_deleting(net: CifarResNet, x: torch.Tensor, deleted, start: int = 0
                     ) -> torch.Tensor:
    """The logits of ``net`` with the blocks at ``deleted`` deleted, computed from ``x``, the
    input of block ``start`` (a block before any deleted one, so that an intact prefix is
    computed once: ``block_inputs``). Equals ``without_blocks(net, deleted)`` without copying
    the net."""
    for index, block in enumerate(net.blocks()[start:], start):
        x = F.relu(kept_path(block)(x)) if index in deleted else block(x)
    return net.head(x)


def _identity_bn(bn: nn.BatchNorm2d) -> None:
    """BN that passes its input through in evaluation mode: scale 1, shift 0, running mean 0
    and running variance 1 - eps (so that sqrt(var + eps) is 1)."""
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)


def identity_block(block: BasicBlock) -> BasicBlock:
    """Make a same-shape ``block`` compute the identity on non-negative input (a ReLU output)
    in evaluation mode. Residual: the branch's last BN outputs zero, so the block is
    ReLU(x + 0) = x. Plain: both convs are Dirac kernels (each channel copied from the middle
    tap), both BNs the identity, and each ReLU acts on non-negative values."""
    with torch.no_grad():
        if block.shortcut is not None:
            nn.init.zeros_(block.bn2.weight)
            nn.init.zeros_(block.bn2.bias)
            return block
        for conv, bn in ((block.conv1, block.bn1), (block.conv2, block.bn2)):
            nn.init.dirac_(conv.weight)
            _identity_bn(bn)
    return block


def deepen(shallow: CifarResNet, depth: int) -> CifarResNet:
    """A ``depth``-layer net of ``shallow``'s family (same shortcut) whose every stage holds the
    shallow net's trained blocks followed by identity blocks: in evaluation mode its outputs
    equal the shallow net's."""
    if blocks_per_stage(depth) < blocks_per_stage(shallow.depth):
        raise ValueError(f"deepen makes a net deeper: depth {depth} < {shallow.depth}")
    deep = CifarResNet(depth, shallow.shortcut, shallow.fc.out_features)
    deep.conv1, deep.bn1, deep.fc = copy.deepcopy((shallow.conv1, shallow.bn1, shallow.fc))
    for deep_stage, shallow_stage in zip(_stages(deep), _stages(shallow), strict=True):
        for index, block in enumerate(shallow_stage):
            deep_stage[index] = copy.deepcopy(block)
        for index in range(len(shallow_stage), len(deep_stage)):
            identity_block(deep_stage[index])
    return deep
