"""Reading CIFAR-10 from where it lies, once, into uint8 tensors cached by content hash.

A source is either ``"official"`` (the official release through torchvision, downloaded where
the internet is reachable) or a path to an ImageFolder layout, as a folder or a ``.tar.gz``::

    train/<class>/*.jpg|png    test/<class>/*.jpg|png

(optionally under one top-level folder). Images are decoded once with torchvision.io and the
arrays saved to ``cache_dir/cifar10-<hash>.pt``, the hash being of the source's bytes, so a
second start loads them in a second and a changed source is never served stale.

Runs are keyed by the data's *content* (``content_fingerprint``: the decoded pixels and labels
of both splits, in one canonical order), not by its bytes: every lossless copy of CIFAR-10
(the official release, a PNG archive or folder) shares the runs of the others, and a lossy copy
(JPEG) does not. The official release's content fingerprint is known (``OFFICIAL_CONTENT``),
so finding its runs needs no download.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image

OFFICIAL = "official"
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LAYOUT_HELP = (
    "expected an ImageFolder layout: train/<class>/<image>.jpg and test/<class>/<image>.jpg "
    "(as a folder or a .tar.gz), or data.source=official for torchvision's download"
)


# torchvision 0.29 deprecates its image decoders in favour of TorchCodec; they still work and
# decode JPEG and PNG faster than Pillow. Move to TorchCodec when torchvision drops them.
warnings.filterwarnings("ignore", "The image decoding and encoding capabilities of TorchVision",
                        DeprecationWarning)


class DataSourceError(RuntimeError):
    """The data source is missing, malformed or unreadable; the message says how to fix it."""


#: ``content_fingerprint`` of the official CIFAR-10 release; the exact PNG copy decodes to the
#: same arrays (tests/test_data.py checks it where ../shared/data is at hand).
OFFICIAL_CONTENT = "f0ae1d480c2735c6ae05f197dc08507073a85d0d70e4cd2c73bf18ce0fcdcfb4"


def source_fingerprint(source: str | os.PathLike, cache_dir: str | os.PathLike) -> str:
    """The content fingerprint of a source, which keys its runs: known for the official
    release, decoded (once, then cached) for a path."""
    if str(source) == OFFICIAL:
        return OFFICIAL_CONTENT
    return load_source(source, cache_dir)["fingerprint"]


def content_fingerprint(data: dict) -> str:
    """sha256 of the decoded data set: for each split its uint8 images (N, 3, 32, 32) and
    int64 labels, in the canonical order (by label, then in the source's order: the official
    index order for the official release, and for an ImageFolder whose file names are those
    indices, as the PNG copy's are)."""
    digest = hashlib.sha256()
    for split in SPLITS:
        images, labels = data[split]
        digest.update(split.encode())
        digest.update(images.contiguous().numpy().tobytes())
        digest.update(labels.to(torch.int64).numpy().tobytes())
    return digest.hexdigest()


def bytes_fingerprint(source: str | os.PathLike) -> str:
    """A hex digest of the source's bytes: what the decoded cache is keyed by."""
    if str(source) == OFFICIAL:
        return "torchvision-cifar10-official"
    path = _existing(source)
    digest = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    else:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(path)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def load_source(source: str | os.PathLike, cache_dir: str | os.PathLike) -> dict:
    """The whole data set as ``{"train": (images, labels), "test": (...), "classes": [...],
    "fingerprint": <content_fingerprint>}``, images uint8 (N, 3, 32, 32), labels int64, in
    the canonical order; decoded from the source only on a cache miss."""
    cache_file = Path(cache_dir) / f"cifar10-{bytes_fingerprint(source)[:20]}.pt"
    if cache_file.exists():
        data = torch.load(cache_file)
        if "fingerprint" in data:
            return data
    else:
        data = _read_official(Path(cache_dir)) if str(source) == OFFICIAL else \
            _read_image_folder(source)
    data["fingerprint"] = content_fingerprint(data)
    if str(source) == OFFICIAL and data["fingerprint"] != OFFICIAL_CONTENT:
        raise DataSourceError(f"the downloaded CIFAR-10 in {cache_dir} decodes to "
                              f"{data['fingerprint']}, not the official release's "
                              f"{OFFICIAL_CONTENT}: delete it and download it again")
    _save(data, cache_file)
    return data


def _save(data: dict, cache_file: Path) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    partial = cache_file.with_suffix(f".{os.getpid()}.tmp")
    torch.save(data, partial)
    partial.replace(cache_file)


def _existing(source: str | os.PathLike) -> Path:
    path = Path(source).expanduser()
    if not path.exists():
        raise DataSourceError(
            f"data source {str(path)!r} does not exist. Pass data.source=<path to a folder or "
            ".tar.gz of CIFAR-10 in ImageFolder layout> (make: DATA=<path>), "
            "or data.source=official to download the official release."
        )
    return path


def _read_official(cache_dir: Path) -> dict:
    from torchvision.datasets import CIFAR10

    root = cache_dir / "official"
    try:
        splits = {split: CIFAR10(root, train=split == "train", download=True) for split in SPLITS}
    except Exception as error:  # the download fails in many ways offline
        raise DataSourceError(
            f"could not download the official CIFAR-10 release into {root} ({error}). Without "
            "internet, pass data.source=<path to an ImageFolder folder or .tar.gz> "
            "(make: DATA=<path>)."
        ) from error
    data = {split: _by_label(torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous(),
                             torch.tensor(dataset.targets, dtype=torch.int64))
            for split, dataset in splits.items()}
    data["classes"] = list(splits["train"].classes)
    return data


def _by_label(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The canonical order: by label, each label's images in their given order."""
    order = torch.sort(labels, stable=True).indices
    return images[order].contiguous(), labels[order]


def _read_image_folder(source: str | os.PathLike) -> dict:
    path = _existing(source)
    entries = _archive_entries(path) if path.is_file() else _folder_entries(path)
    grouped: dict[str, dict[str, list[tuple[str, bytes]]]] = {split: {} for split in SPLITS}
    for name, payload in entries:
        parts = Path(name).parts
        split_index = next((i for i, part in enumerate(parts) if part in SPLITS), None)
        if split_index is None or len(parts) != split_index + 3:
            continue
        split, label = parts[split_index], parts[split_index + 1]
        grouped[split].setdefault(label, []).append((name, payload))
    classes = sorted(grouped["train"])
    if not classes or sorted(grouped["test"]) != classes:
        found = {split: sorted(labels) for split, labels in grouped.items()}
        raise DataSourceError(f"{path}: {LAYOUT_HELP}; found classes per split: {found}")
    data = {split: _decode_split(grouped[split], classes) for split in SPLITS}
    data["classes"] = classes
    return data


def _decode_split(by_class: dict[str, list[tuple[str, bytes]]], classes: list[str]):
    images, labels = [], []
    for label, name in enumerate(classes):
        for file_name, payload in sorted(by_class[name]):
            images.append(_decode(file_name, payload))
            labels.append(label)
    return torch.stack(images), torch.tensor(labels, dtype=torch.int64)


def _decode(name: str, payload: bytes) -> torch.Tensor:
    try:
        image = decode_image(torch.frombuffer(bytearray(payload), dtype=torch.uint8),
                             mode=ImageReadMode.RGB)
    except RuntimeError as error:
        raise DataSourceError(f"cannot decode image {name}: {error}") from error
    if image.shape != (3, 32, 32):
        raise DataSourceError(f"{name}: expected a 32x32 image, got {tuple(image.shape[1:])}")
    return image


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _folder_entries(path: Path) -> Iterator[tuple[str, bytes]]:
    for file in sorted(path.rglob("*")):
        if file.is_file() and _is_image(file.name):
            yield str(file.relative_to(path)), file.read_bytes()


def _archive_entries(path: Path) -> Iterator[tuple[str, bytes]]:
    """The image files of a tar(.gz) archive, streamed; a damaged archive is a DataSourceError."""
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if member.isfile() and _is_image(member.name):
                    yield member.name, archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError, io.UnsupportedOperation) as error:
        raise DataSourceError(
            f"{path} is not a readable tar(.gz) archive ({error}); it may be truncated or "
            "corrupt: copy it again and check its sha256."
        ) from error
