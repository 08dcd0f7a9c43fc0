"""Networks as plain ``nn.Module``s, usable without the trainer."""

from resnet_repro.models.blocks import BasicBlock, Bottleneck, ShortcutA
from resnet_repro.models.cifar import CifarResNet
from resnet_repro.models.imagenet import ImageNetResNet, multiply_adds

__all__ = ["BasicBlock", "Bottleneck", "CifarResNet", "ImageNetResNet", "ShortcutA",
           "multiply_adds"]
