"""How many images per second the ImageNet training loader delivers on its own (decoding,
scale augmentation and crop in worker processes, collation, pinned memory where there is a
GPU), without a model: the rate the GPUs can be fed at most.

Without ImageNet at hand, ``write_synthetic_folder`` writes JPEGs of ImageNet's typical size
(500 x 375, smooth content, about as large on disk as its photos) to measure on.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from resnet_repro.data.imagenet import ImageNetDataModule


def synthetic_photo(rng: np.random.Generator, size: tuple[int, int] = (500, 375)) -> bytes:
    """A JPEG (quality 90) of smooth colour fields with fine noise: about 100 KB, like the
    average ImageNet photo."""
    coarse = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    smooth = np.asarray(coarse.resize(size, Image.Resampling.BICUBIC), dtype=np.int16)
    pixels = (smooth + rng.integers(-36, 37, smooth.shape)).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def write_synthetic_folder(root: Path, images: int, classes: int = 10) -> Path:
    """``root/{train,val}/<class>/*.JPEG``: ``images`` training images, a tenth of it for val."""
    rng = np.random.default_rng(0)
    for split, count in (("train", images), ("val", max(classes, images // 10))):
        for index in range(count):
            folder = Path(root) / split / f"n{index % classes:08d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{index:06d}.JPEG").write_bytes(synthetic_photo(rng))
    return Path(root)


def loader_throughput(source: Path, workers: int, batch_size: int, seconds: float,
                      cache_dir: Path) -> dict:
    """Images per second of the training loader over ``seconds`` after one warm-up pass of
    ``workers`` batches; mean file size for the record."""
    datamodule = ImageNetDataModule(source, cache_dir=cache_dir, batch_size=batch_size,
                                    num_workers=workers, mean_images=100)
    datamodule.setup()
    files = [Path(path) for path, _ in datamodule.samples["train"]]
    count, start, warm = 0, 0.0, False
    while True:
        for index, (images, _) in enumerate(datamodule.train_dataloader()):
            if not warm and index + 1 >= max(workers, 1):
                warm, start = True, time.perf_counter()
            elif warm:
                count += len(images)
            if warm and time.perf_counter() - start >= seconds:
                elapsed = time.perf_counter() - start
                return {"workers": workers, "batch_size": batch_size,
                        "images_per_second": round(count / elapsed, 1),
                        "mean_file_kb": round(sum(f.stat().st_size for f in files) /
                                              len(files) / 1024, 1)}
