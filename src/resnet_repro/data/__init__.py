"""CIFAR-10 (decoded once into a cache of uint8 tensors, augmented on whole batches) and
ImageNet (decoded by loader workers, augmented on whole batches after the crop)."""

from resnet_repro.data.augment import crop_and_flip, random_crop_flip
from resnet_repro.data.cifar10 import CIFAR10DataModule
from resnet_repro.data.imagenet import ImageNetDataModule
from resnet_repro.data.sources import DataSourceError, load_source, source_fingerprint

__all__ = [
    "CIFAR10DataModule",
    "DataSourceError",
    "ImageNetDataModule",
    "crop_and_flip",
    "load_source",
    "random_crop_flip",
    "source_fingerprint",
]
