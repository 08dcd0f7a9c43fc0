"""CIFAR-10 data: decoded once into a cache of uint8 tensors, augmented on whole batches."""

from resnet_repro.data.augment import crop_and_flip, random_crop_flip
from resnet_repro.data.cifar10 import CIFAR10DataModule
from resnet_repro.data.sources import DataSourceError, load_source, source_fingerprint

__all__ = [
    "CIFAR10DataModule",
    "DataSourceError",
    "crop_and_flip",
    "load_source",
    "random_crop_flip",
    "source_fingerprint",
]
