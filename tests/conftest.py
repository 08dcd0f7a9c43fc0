"""Shared fixtures: a tiny CIFAR-like ImageFolder, written as real JPEG files by Pillow."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from tests.tiny_data import write_image_folder


def share_the_cpus_between_workers() -> None:
    """Under pytest-xdist (``make test``), each worker and the processes it starts get their
    share of the CPUs as torch threads, so that two workers on two cores do not run four threads
    that wait on each other."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))


share_the_cpus_between_workers()

CLASSES = [f"class{index}" for index in range(10)]
TRAIN_PER_CLASS, TEST_PER_CLASS = 26, 5


def write_cifar_folder(root: Path, splits=(("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS))):
    return write_image_folder(root, dict(splits), CLASSES, (32, 32))


def write_tar_gz(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return archive


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    return write_cifar_folder(tmp_path_factory.mktemp("tiny") / "cifar")


@pytest.fixture
def smoke_overrides(tiny_archive, tmp_path) -> list[str]:
    """A smoke-profile run of a depth-8 net on the tiny archive, in this test's folder."""
    return ["profile=smoke", "model.depth=8", f"data.source={tiny_archive}",
            f"data.cache_dir={tmp_path / 'cache'}", f"paths.runs={tmp_path / 'runs'}"]


@pytest.fixture(scope="session")
def tiny_archive(tiny_folder, tmp_path_factory) -> Path:
    return write_tar_gz(tiny_folder, tmp_path_factory.mktemp("archive") / "tiny-cifar.tar.gz")
