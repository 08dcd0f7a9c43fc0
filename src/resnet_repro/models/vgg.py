"""VGG-19 (Simonyan and Zisserman 2015, configuration E), the paper's Figure 3 reference: built
by torchvision, named as this suite names its nets, so that it trains through the ImageNet
experiments like the others (``model=vgg19``)."""

from __future__ import annotations

from torch import nn
from torchvision.models import vgg19 as torchvision_vgg19
from torchvision.models import vgg19_bn


def vgg19(num_classes: int = 1000, batch_norm: bool = False) -> nn.Module:
    """torchvision's VGG-19 (16 convolutions, 3 fully connected layers), fresh weights;
    ``batch_norm`` adds BN after each convolution (torchvision's ``vgg19_bn``; the paper's
    VGG-19 has none)."""
    net = (vgg19_bn if batch_norm else torchvision_vgg19)(num_classes=num_classes)
    net.name = "vgg-19-bn" if batch_norm else "vgg-19"
    return net
