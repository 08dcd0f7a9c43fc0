"""Tiny ImageFolder data sets of real JPEG files, written by Pillow: for tests and the smoke
profile of the ImageNet experiments (``make reproduce-fig4 PROFILE=smoke``).

    python -m tests.tiny_data .cache/tiny-imagenet

Each image's colour depends on its class, so a net can learn something in a few steps.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image


def image_bytes(rng: np.random.Generator, label: int, size: tuple[int, int]) -> bytes:
    """A JPEG of ``size`` (width, height): a colour set by ``label`` plus noise."""
    width, height = size
    pixels = rng.integers(0, 60, (height, width, 3)) + np.array(
        [label * 20 % 256, 255 - label * 20 % 256, 100])
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_image_folder(
    root: Path, splits: dict[str, int], classes: list[str], size: tuple[int, int], seed: int = 0,
    prefix: str = "",
) -> Path:
    """``root/<split>/<class>/<prefix><index>.jpg``, ``splits[split]`` images per class."""
    rng = np.random.default_rng(seed)
    for split, count in splits.items():
        for label, name in enumerate(classes):
            folder = Path(root) / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                (folder / f"{prefix}{index:04d}.jpg").write_bytes(image_bytes(rng, label, size))
    return Path(root)


def write_tiny_imagenet(root: Path) -> Path:
    """Four classes with ImageNet-style folder names, 24 training and 6 validation images each,
    landscape and portrait."""
    classes = [f"n0000000{index}" for index in range(4)]
    write_image_folder(root, {"train": 16, "val": 6}, classes, (120, 90))
    return write_image_folder(root, {"train": 8}, classes, (90, 110), seed=1, prefix="p")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    root = parser.parse_args().root
    if (root / "val").exists():
        print(f"{root} exists already")
        return
    write_tiny_imagenet(root)
    print(f"wrote {root}")


if __name__ == "__main__":
    main()
