"""Shared fixtures: a tiny CIFAR-like ImageFolder, written as real JPEG files by Pillow."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CLASSES = [f"class{index}" for index in range(10)]
TRAIN_PER_CLASS, TEST_PER_CLASS = 26, 5


def _image_bytes(rng: np.random.Generator, label: int) -> bytes:
    """A 32x32 RGB image whose colour depends on its label, so a net can learn something."""
    pixels = rng.integers(0, 60, (32, 32, 3)) + np.array([label * 20, 255 - label * 20, 100])
    buffer = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_image_folder(root: Path, splits=(("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS))):
    rng = np.random.default_rng(0)
    for split, count in splits:
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                (folder / f"{index:04d}.jpg").write_bytes(_image_bytes(rng, label))
    return root


def write_tar_gz(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return archive


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("tiny") / "cifar")


@pytest.fixture
def smoke_overrides(tiny_archive, tmp_path) -> list[str]:
    """A smoke-profile run of a depth-8 net on the tiny archive, in this test's folder."""
    return ["profile=smoke", "model.depth=8", f"data.source={tiny_archive}",
            f"data.cache_dir={tmp_path / 'cache'}", f"paths.runs={tmp_path / 'runs'}"]


@pytest.fixture(scope="session")
def tiny_archive(tiny_folder, tmp_path_factory) -> Path:
    return write_tar_gz(tiny_folder, tmp_path_factory.mktemp("archive") / "tiny-cifar.tar.gz")
