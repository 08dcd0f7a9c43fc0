"""Networks as plain ``nn.Module``s, usable without the trainer."""

from resnet_repro.models.cifar import BasicBlock, CifarResNet, ShortcutA

__all__ = ["BasicBlock", "CifarResNet", "ShortcutA"]
