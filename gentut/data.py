"""MNIST and Fashion-MNIST as tensors, and shuffled batches that stay on the device.

The data sets are small (60,000 images of 28x28 pixels), so instead of a per-sample
`DataLoader` we hold a whole split as one tensor on the device and cut batches out of it
by indexing: no Python work per image, no copies between host and device per step.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import torch

from .hardware import device as pick_device

# name -> (folder in the torchvision layout, class names)
DATASETS = {
    "mnist": ("MNIST", [str(d) for d in range(10)]),
    "fashion": (
        "FashionMNIST",
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
}
SPLITS = {"train": "train", "test": "t10k"}
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")  # package dataset-fashion-mnist
IDX_MAGIC = {"images": 0x0803, "labels": 0x0801}  # uint8 data, 3 or 1 dimensions


class DataError(RuntimeError):
    """A data set is missing, truncated or corrupt; the message says what to do."""


class Dataset(NamedTuple):
    """One split of a data set: uint8 images (N,1,28,28), int64 labels (N,), class names."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]


def cache_dir() -> Path:
    """The user cache folder where downloads go (`$XDG_CACHE_HOME/gentut`)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gentut"


def search_path(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """The raw-file folders tried for `name`, in order: root, $GENTUT_DATA, cache, Debian."""
    folder = DATASETS[name][0]
    roots = [root, os.environ.get("GENTUT_DATA"), cache_dir()]
    dirs = [Path(r).expanduser() / folder / "raw" for r in roots if r]
    if name == "fashion":
        dirs.append(DEBIAN_FASHION)
    return dirs


def load(name: str, split: str = "train", root: str | os.PathLike | None = None) -> Dataset:
    """Load a split of "mnist" or "fashion" as tensors, downloading it if no copy is found."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}: choose one of {sorted(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {sorted(SPLITS)}")
    stem = SPLITS[split]
    raw = raw_dir(name, root)
    images = _read_idx(raw / f"{stem}-images-idx3-ubyte", "images")
    labels = _read_idx(raw / f"{stem}-labels-idx1-ubyte", "labels")
    if len(images) != len(labels):
        raise DataError(f"{raw} holds {len(images)} images but {len(labels)} labels: "
                        "delete that folder's files and load again")
    if images.shape[1:] != (28, 28):
        h, w = images.shape[1:]
        raise DataError(f"{raw} holds images of {h}x{w} pixels, not 28x28: "
                        f"point root or GENTUT_DATA at the real {DATASETS[name][0]} files")
    return Dataset(images.unsqueeze(1), labels.long(), DATASETS[name][1])


def raw_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """The first folder on the search path holding `name`'s files; else download them."""
    dirs = search_path(name, root)
    for d in dirs:
        if _locate(d / "train-images-idx3-ubyte"):
            return d
    target = cache_dir() / DATASETS[name][0] / "raw"
    try:
        _download(name)
    except Exception as err:  # offline, blocked, or the mirror failed
        tried = ", ".join(str(d) for d in dirs)
        raise DataError(
            f"{name} not found (looked in {tried}) and the download failed "
            f"({type(err).__name__}): set GENTUT_DATA to a folder holding "
            f"{DATASETS[name][0]}/raw/*-ubyte.gz, or connect to the internet"
        ) from None
    return target


def _download(name: str) -> None:
    """Fetch the four IDX files into the cache with torchvision's downloader."""
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    cls(root=str(cache_dir()), train=True, download=True)


def _locate(path: Path) -> Path | None:
    """`path` itself, or its gzipped twin `path.gz`, whichever exists."""
    for p in (path, path.with_name(path.name + ".gz")):
        if p.is_file():
            return p
    return None


def _read_idx(path: Path, kind: str) -> torch.Tensor:
    """Read one uint8 IDX file (gzipped or not), checking its header against its size."""
    found = _locate(path)
    if found is None:
        raise DataError(f"{path}(.gz) is missing beside its sibling files: restore it, "
                        "or delete the folder to download the set again")
    try:
        opener = gzip.open if found.suffix == ".gz" else open
        with opener(found, "rb") as f:
            blob = f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{found} is corrupt ({err}): delete it and load again") from None
    ndim = 3 if kind == "images" else 1
    header = 4 + 4 * ndim
    if len(blob) < header:
        raise DataError(f"{found} is truncated: delete it and load again")
    magic, *dims = struct.unpack(f">I{ndim}I", blob[:header])
    if magic != IDX_MAGIC[kind]:
        raise DataError(f"{found} is not an IDX file of {kind} (magic {magic:#x}): "
                        "delete it and load again")
    size = 1
    for d in dims:
        size *= d
    if len(blob) != header + size:
        raise DataError(f"{found} is truncated or padded ({len(blob) - header} bytes of data "
                        f"for shape {tuple(dims)}): delete it and load again")
    data = torch.frombuffer(bytearray(blob), dtype=torch.uint8, offset=header)
    return data.view(*dims)


class Batches:
    """Shuffled mini-batches of a whole split held as one float tensor on the device.

    Each epoch is a fresh permutation drawn from a generator seeded by (seed, epoch), so the
    order is the same on every device and a run resumed from `state_dict()` sees exactly the
    batches it would have seen.
    """

    def __init__(self, data: Dataset, batch_size: int, *,
                 value_range: tuple[float, float] = (0.0, 1.0),
                 device: str | torch.device = "auto", seed: int = 0,
                 limit: int | None = None) -> None:
        images, labels = data.images, data.labels
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        if batch_size > len(images):
            raise ValueError(f"batch_size {batch_size} exceeds the {len(images)} images: "
                             "lower it or raise limit")
        self.device = pick_device(device)
        lo, hi = value_range
        # uint8 -> float in [lo, hi], once for the whole set
        self.images = (images.to(self.device).float() / 255 * (hi - lo) + lo).contiguous()
        self.labels = labels.to(self.device)
        self.classes = data.classes
        self.batch_size = batch_size
        self.seed = seed
        self.epoch, self.position = 0, 0
        self._order: torch.Tensor | None = None

    def __len__(self) -> int:
        """Full batches per epoch (the last partial batch is dropped)."""
        return len(self.images) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch: the rest of the current one, or a full reshuffled one once it is over,
        so that every `for x, y in batches:` pass sees batches (a second pass too)."""
        if self.position == len(self):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = None
        while self.position < len(self):
            yield self.next()

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (images, labels) batch, starting a reshuffled epoch when one ends."""
        if self.position == len(self):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = None
        if self._order is None:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            self._order = torch.randperm(len(self.images), generator=g).to(self.device)
        i = self.position * self.batch_size
        idx = self._order[i:i + self.batch_size]
        self.position += 1
        return self.images[idx], self.labels[idx]

    def state_dict(self) -> dict[str, int]:
        """Where in which epoch we are: all that is needed to resume exactly."""
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from a `state_dict()`."""
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._order = None
