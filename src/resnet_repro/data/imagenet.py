"""ImageNet (or any data set in its folder layout) as a LightningDataModule.

    <source>/train/<wnid>/*.JPEG    <source>/val/<wnid>/*.JPEG

JPEG files are decoded with torchvision.io in the loader's worker processes, which resize and
crop each image (``imagenet_transforms``) and hand uint8 crops to pinned memory; flip, colour
augmentation and mean subtraction then run on whole batches on the training device. Under DDP
every process loads its own disjoint shard of each epoch, ``batch_size / world_size`` images
per step, so that the batch is ``batch_size`` in total (256 in the paper). The validation set
is sharded too; where its size does not divide by the number of processes, PyTorch's
``DistributedSampler`` repeats a few images to even the shards (none for 50,000 images on 2, 4,
8, 16 or 32 processes).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset
from torchvision.io import ImageReadMode, decode_image, read_file

from resnet_repro.data.distributed import batch_share, rank_and_world_size
from resnet_repro.data.imagenet_transforms import (
    CenterCrop,
    RandomScaleCrop,
    Scales,
    TenCrop,
    pca_lighting,
    random_flip,
)
from resnet_repro.data.sources import DataSourceError

SPLITS = ("train", "val")


class ImageFiles(Dataset):
    """(``transform``(decoded image), label) for a list of (path, label) samples."""

    def __init__(self, samples: list[tuple[str, int]], transform):
        self.samples, self.transform = samples, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[index]
        try:
            image = decode_image(read_file(path), mode=ImageReadMode.RGB)
        except RuntimeError as error:
            raise DataSourceError(f"cannot decode image {path}: {error}") from error
        return self.transform(image), label


def list_split(source: Path, split: str) -> tuple[list[tuple[str, int]], list[str]]:
    """The image files of ``source/split`` with their labels, and the class names; a clear
    error where the folder is missing or holds no images."""
    folder = Path(source).expanduser() / split
    if not folder.is_dir():
        raise DataSourceError(
            f"{folder} does not exist: expected an ImageFolder layout, <source>/train/<wnid>/"
            "*.JPEG and <source>/val/<wnid>/*.JPEG (ImageNet's val images sorted into class "
            "folders). Pass data.source=<that folder> (make: DATA=<path>)."
        )
    try:
        classes, class_to_index = find_classes(str(folder))
        samples = make_dataset(str(folder), class_to_index, extensions=IMG_EXTENSIONS)
    except (FileNotFoundError, RuntimeError) as error:
        raise DataSourceError(f"{folder}: {error}") from error
    return samples, classes


def list_source(source: Path) -> tuple[dict[str, list[tuple[str, int]]], list[str]]:
    """Every split's (path, label) samples, and the class names, which all splits must share."""
    samples, classes = {}, None
    for split in SPLITS:
        samples[split], split_classes = list_split(source, split)
        if classes is not None and split_classes != classes:
            raise DataSourceError(f"{source}: train/ and val/ hold different classes")
        classes = split_classes
    return samples, classes


def listing_fingerprint(source: Path, samples: dict[str, list[tuple[str, int]]]) -> str:
    """A hash of every image's relative path, size and label: hashing ImageNet's 150 GB of
    content at each start would take longer than it is worth, and a changed file nearly always
    changes size."""
    digest = hashlib.sha256()
    for split in SPLITS:
        for path, label in samples[split]:
            relative = os.path.relpath(path, source)
            digest.update(f"{relative}\0{os.path.getsize(path)}\0{label}\n".encode())
    return digest.hexdigest()


class ImageNetDataModule(pl.LightningDataModule):
    """Training on ``train/`` with the paper's augmentation; evaluation on ``val/``: center
    crops during training (``val/err``), the 10-crop test at the end (``trainer.test``:
    ``val_10crop/err`` top-1 and ``err5`` top-5) and, with ``test_scales``, the fully
    convolutional multi-scale test too (``val_multiscale/...``, one image per batch; the
    per-pixel mean, made for 224 crops, is applied as its average colour).

    The per-pixel mean is the mean of the center crops of up to ``mean_images`` training
    images (spread evenly over the set), computed once and cached by the data's fingerprint.
    ``scale``, ``crop_size`` and ``test_size`` are the paper's [256, 480], 224 and 256; the
    smoke profile shrinks them.
    """

    title = "ImageNet"

    def __init__(
        self,
        source: str | os.PathLike,
        cache_dir: str | os.PathLike = ".cache/data",
        batch_size: int = 256,
        eval_batch_size: int = 100,
        num_workers: int = 8,
        pin_memory: bool = True,
        scale: tuple[int, int] = (256, 480),
        crop_size: int = 224,
        test_size: int = 256,
        lighting_std: float = 0.1,
        mean_images: int = 10000,
        test_scales: list[int] | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.source, self.cache_dir = Path(str(source)).expanduser(), Path(cache_dir)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.scale, self.crop_size, self.test_size = tuple(scale), crop_size, test_size
        self.lighting_std, self.mean_images, self.seed = lighting_std, mean_images, seed
        self.test_scales = list(test_scales) if test_scales else None
        self.eval_names = ["val"]
        self.test_names = ["val_10crop"] + (["val_multiscale"] if self.test_scales else [])
        self.pixel_mean: torch.Tensor | None = None

    @functools.cached_property
    def _listing(self) -> tuple[dict[str, list[tuple[str, int]]], list[str]]:
        """The folders are listed once, for the fingerprint and the loaders alike."""
        return list_source(self.source)

    @property
    def samples(self) -> dict[str, list[tuple[str, int]]]:
        return self._listing[0]

    @property
    def classes(self) -> list[str]:
        return self._listing[1]

    @functools.cached_property
    def fingerprint(self) -> str:
        return listing_fingerprint(self.source, self.samples)

    def setup(self, stage: str | None = None) -> None:
        if self.pixel_mean is None:
            self.pixel_mean = self._pixel_mean()

    def _pixel_mean(self) -> torch.Tensor:
        cache_file = self.cache_dir / (
            f"imagenet-mean-{self.fingerprint[:20]}-{self.test_size}-{self.crop_size}"
            f"-{self.mean_images}.pt")
        if cache_file.exists():
            return torch.load(cache_file)
        samples = self.samples["train"]
        step = max(1, len(samples) // self.mean_images)
        subset = ImageFiles(samples[::step][: self.mean_images], self.center_crop)
        total = torch.zeros(3, self.crop_size, self.crop_size, dtype=torch.float64)
        # every process reads the whole subset (no shard), so all share one mean
        loader = DataLoader(subset, batch_size=self.eval_batch_size, num_workers=self.num_workers)
        for images, _ in loader:
            total += images.double().div_(255).sum(dim=0)
        mean = (total / len(subset)).float()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_suffix(f".{os.getpid()}.tmp")
        torch.save(mean, partial)
        partial.replace(cache_file)
        return mean

    @property
    def center_crop(self) -> CenterCrop:
        return CenterCrop(self.test_size, self.crop_size)

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool = False,
                drop_last: bool = False) -> DataLoader:
        rank, world_size = rank_and_world_size(self.trainer)
        sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                     shuffle=shuffle, seed=self.seed, drop_last=drop_last)
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        transform = RandomScaleCrop(*self.scale, crop=self.crop_size)
        return self._loader(ImageFiles(self.samples["train"], transform),
                            batch_share(self.batch_size, rank_and_world_size(self.trainer)[1]),
                            shuffle=True, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(ImageFiles(self.samples["val"], self.center_crop),
                            self.eval_batch_size)

    def test_dataloader(self) -> list[DataLoader]:
        """The 10-crop test, batches of (B, 10, C, H, W); with ``test_scales``, the multi-scale
        test, batches of one image as a list of (1, C, H, W), one per scale."""
        ten_crop = TenCrop(self.test_size, self.crop_size)
        loaders = [self._loader(ImageFiles(self.samples["val"], ten_crop),
                                max(1, self.eval_batch_size // 10))]
        if self.test_scales:
            loaders.append(self._loader(ImageFiles(self.samples["val"], Scales(self.test_scales)),
                                        1))
        return loaders

    def prepare(self, images: torch.Tensor | list[torch.Tensor],
                training: bool) -> torch.Tensor | list[torch.Tensor]:
        """uint8 crops to floats in [0, 1] less the per-pixel mean; flipped and colour-shifted
        for training. Whole images at several scales less the mean's average colour."""
        if self.pixel_mean.device != images[0].device:
            self.pixel_mean = self.pixel_mean.to(images[0].device)
        if isinstance(images, list):
            colour = self.pixel_mean.mean(dim=(1, 2), keepdim=True)
            return [image.float().div_(255) - colour for image in images]
        images = images.float().div_(255)
        if training:
            images = pca_lighting(random_flip(images), self.lighting_std)
        return images - self.pixel_mean

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        return self.prepare(images, training), labels
