"""The paper's ImageNet augmentation and test crops (section 3.4).

Per image, in the loader's worker processes (sizes differ until cropped), on uint8 tensors:
    training   shorter side resized to a random size in [256, 480], a random 224 x 224 crop
    center     shorter side 256, the 224 x 224 center crop (the curves of Figure 4)
    ten_crop   shorter side 256, the four corner and the center crops and their mirror images
               (the 10-crop test of Tables 2 and 3)
    scales     the whole image at several sizes of its shorter side (224, 256, 384, 480, 640):
               the fully convolutional multi-scale test of the paper's best results
Per batch, on the training device: a random horizontal flip and AlexNet's PCA colour
augmentation (here); the per-pixel mean is subtracted by ``ImageNetDataModule``.
"""

from __future__ import annotations

import torch
import torchvision.transforms.v2.functional as TF

#: AlexNet's colour PCA of ImageNet's RGB pixels scaled to [0, 1] (as in fb.resnet.torch).
PCA_EIGENVALUES = torch.tensor([0.2175, 0.0188, 0.0045])
PCA_EIGENVECTORS = torch.tensor([
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.8140],
    [-0.5836, -0.6948, 0.4203],
])


class RandomScaleCrop:
    """Shorter side resized to a size drawn uniformly from [``low``, ``high``], then a random
    ``crop`` x ``crop`` window (scale augmentation)."""

    def __init__(self, low: int = 256, high: int = 480, crop: int = 224):
        self.low, self.high, self.crop = low, high, crop

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        size = int(torch.randint(self.low, self.high + 1, ()))
        image = TF.resize(image, size, antialias=True)
        height, width = image.shape[-2:]
        top = int(torch.randint(0, height - self.crop + 1, ()))
        left = int(torch.randint(0, width - self.crop + 1, ()))
        return image[..., top : top + self.crop, left : left + self.crop]


class CenterCrop:
    """Shorter side resized to ``size``, then the ``crop`` x ``crop`` center."""

    def __init__(self, size: int = 256, crop: int = 224):
        self.size, self.crop = size, crop

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return TF.center_crop(TF.resize(image, self.size, antialias=True), self.crop)


class TenCrop(CenterCrop):
    """Shorter side resized to ``size``; the 4 corner and center crops and their mirror images,
    stacked as (10, C, crop, crop)."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return torch.stack(TF.ten_crop(TF.resize(image, self.size, antialias=True), self.crop))


class Scales:
    """The whole image with its shorter side resized to each of ``sizes``: a list of tensors."""

    def __init__(self, sizes: list[int]):
        self.sizes = list(sizes)

    def __call__(self, image: torch.Tensor) -> list[torch.Tensor]:
        return [TF.resize(image, size, antialias=True) for size in self.sizes]


def random_flip(images: torch.Tensor) -> torch.Tensor:
    """Each image of the batch mirrored left-right with probability 1/2."""
    flip = torch.rand(images.shape[0], device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def pca_lighting(images: torch.Tensor, std: float) -> torch.Tensor:
    """AlexNet's colour augmentation: to every pixel of an image, add the same RGB offset
    ``eigenvectors @ (alpha * eigenvalues)``, with ``alpha`` ~ N(0, ``std``) per image."""
    if std == 0:
        return images
    alpha = torch.randn(images.shape[0], 3, device=images.device) * std
    offset = (alpha * PCA_EIGENVALUES.to(images.device)) @ PCA_EIGENVECTORS.to(images.device).T
    return images + offset[:, :, None, None]
