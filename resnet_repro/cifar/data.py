"""CIFAR-10 as uint8 tensors: the official download, a folder-per-class tree, or a .tar.gz of one.

Every source is decoded once into a cached tensor file keyed by its checksum, so the second load takes
seconds. A source that is not exactly CIFAR-10's layout stops with a `DataError`: one line that names
the offending file or folder and says what was expected. Nothing is ever skipped silently, so a run
cannot train on partial data without saying so.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tarfile
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image, ImageFile, UnidentifiedImageError
from tqdm.auto import tqdm

from resnet_repro.runs.files import atomic_write
from resnet_repro.runs.folders import (
    ARCHIVE_SUFFIXES,
    OFFICIAL_DATASET,
    dataset_name,
    file_sha256,
    is_official_source,
)

# ---------------------------------------------------------------------------------------------------------
# What CIFAR-10 is
# ---------------------------------------------------------------------------------------------------------

# CIFAR-10's label order (also alphabetical, so a folder tree sorts into the official label indices).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = ("train", "test")
EXPECTED_PER_CLASS = {"train": 5000, "test": 1000}  # 50,000 train / 10,000 test images
IMAGE_SIZE = 32  # pixels, square, RGB
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# The names of the official files and of the JPEG archive, and what tells the archive, are results'
# (dataset_name): run folders are keyed by the same name before any data is loaded.
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"  # what torchvision downloads

CACHE_FORMAT = 1  # bump when the cached tensor layout or the decoding changes
CACHE_ENV = "RESNET_REPRO_CACHE"

_CLASS_LIST = ", ".join(CIFAR10_CLASSES)
_TREE_LAYOUT = "train/<class>/*.jpg|png and test/<class>/*.jpg|png"


class DataError(ValueError):
    """The data source is not CIFAR-10 as expected; the message is one line naming the file and why."""


@dataclass(repr=False)
class CifarData:
    """CIFAR-10 in memory. Images are uint8 [N, 3, 32, 32] (0..255); labels int64 [N] index `classes`."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    # name ("cifar10" | "cifar10-jpeg" | file/folder name: results.dataset_name), sha256, sha256_of, source,
    # lossy, plus "subset" / "validation" when those were applied. Goes into every result's provenance.
    identity: dict = field(default_factory=dict)

    def to(self, device: torch.device | str) -> CifarData:
        """The same data with every tensor on `device` (e.g. to keep the whole set on the GPU)."""
        return CifarData(
            self.train_images.to(device),
            self.train_labels.to(device),
            self.test_images.to(device),
            self.test_labels.to(device),
            list(self.classes),
            dict(self.identity),
        )

    def __repr__(self) -> str:
        return (
            f"CifarData({self.identity.get('name', '?')}: {len(self.train_labels):,} train, "
            f"{len(self.test_labels):,} test images on {self.train_images.device})"
        )


def default_cache_dir() -> Path:
    """`$RESNET_REPRO_CACHE`, else `~/.cache/resnet_repro`."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "resnet_repro"


# ---------------------------------------------------------------------------------------------------------
# The public entry points
# ---------------------------------------------------------------------------------------------------------


def load_cifar10(
    source: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    subset: int | tuple[int, int] | None = None,
    *,
    expect_counts: bool = True,
    progress: bool = True,
) -> CifarData:
    """Load CIFAR-10 from `source`, decoding it only the first time.

    source: None or "official" downloads the official files with torchvision into the cache folder;
        a path to a folder-per-class tree (`train/<class>/*.jpg|png`, `test/<class>/...`, optionally
        inside one wrapping folder) or to a `.tar.gz` of one, e.g. path/to/cifar10.tar.gz.
    cache_dir: where decoded tensors (and the official download) live; default `default_cache_dir()`.
        The cache file is keyed by the source's sha256: of the archive file for a .tar.gz or the
        official download, and of the file listing (relative path, size, mtime) for a folder, so
        editing a file in a folder invalidates its cache without re-reading every image to check.
    subset: for smoke runs, a deterministic class-balanced subset: `(n_train, n_test)` images, or one
        int for the same count in both splits. Each count must be a multiple of 10; the first
        count/10 images of every class (in stored order) are kept. Recorded in identity["subset"].
    expect_counts: require exactly 5,000 train and 1,000 test images per class (the full dataset).
        Pass False only for a deliberately smaller tree of your own; every class still needs an image.
    progress: show tqdm bars while reading and decoding.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if is_official_source(source):
        data = _load_official(cache, progress)
    else:
        data = _load_tree_source(Path(source).expanduser(), cache, expect_counts, progress)
    if expect_counts:  # also on a cache hit: the cache may hold a tree loaded with expect_counts=False
        source_path = data.identity["source"]
        prefix = source_path + ("/" if Path(source_path).is_dir() else ":")
        _check_counts(_label_counts(data), prefix, expect_counts=True)
    if subset is not None:
        data = take_subset(data, subset)
    return data


def take_subset(data: CifarData, subset: int | tuple[int, int]) -> CifarData:
    """The first n/10 images of every class in each split (class-balanced, deterministic, order kept)."""
    n_train, n_test = (subset, subset) if isinstance(subset, int) else tuple(subset)
    train_idx = _first_per_class(data.train_labels, n_train, len(data.classes), "train")
    test_idx = _first_per_class(data.test_labels, n_test, len(data.classes), "test")
    return CifarData(
        data.train_images[train_idx],
        data.train_labels[train_idx],
        data.test_images[test_idx],
        data.test_labels[test_idx],
        list(data.classes),
        {**data.identity, "subset": [n_train, n_test]},
    )


def split_validation(data: CifarData, size: int = 5000, seed: int = 0) -> CifarData:
    """Hold out `size` training images as the test split (the paper's 45k/5k split to pick a schedule).

    The held-out images are a seeded random draw of size/10 per class (class-balanced); both parts
    keep their original order. The real test images are dropped, and identity["validation"] says so.
    """
    n_classes = len(data.classes)
    if size <= 0 or size % n_classes:
        raise ValueError(f"validation size must be a positive multiple of {n_classes}, got {size}")
    labels = data.train_labels.cpu()
    per_class = size // n_classes
    generator = torch.Generator().manual_seed(seed)
    held_out = []
    for label in range(n_classes):
        members = (labels == label).nonzero().flatten()
        if per_class >= len(members):
            raise ValueError(
                f"validation size {size} needs {per_class} images of class {data.classes[label]!r} "
                f"and leaves none to train on (it has {len(members)})"
            )
        held_out.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    val_idx = torch.cat(held_out).sort().values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[val_idx] = False
    train_idx = keep.nonzero().flatten()
    device = data.train_images.device
    train_idx, val_idx = train_idx.to(device), val_idx.to(device)
    return CifarData(
        data.train_images[train_idx],
        data.train_labels[train_idx],
        data.train_images[val_idx],
        data.train_labels[val_idx],
        list(data.classes),
        {**data.identity, "validation": {"size": size, "seed": seed}},
    )


# ---------------------------------------------------------------------------------------------------------
# Official CIFAR-10 through torchvision
# ---------------------------------------------------------------------------------------------------------


def _load_official(cache: Path, progress: bool) -> CifarData:
    from torchvision.datasets import CIFAR10  # lazy: importing torchvision costs a second

    root = cache / "cifar-10-python"
    archive = root / CIFAR10.filename
    if not archive.is_file():
        _official_split(root, train=True)  # downloads and extracts the archive
    if archive.is_file():
        digest, digest_of = _sha256_file(archive), "archive"
    else:  # someone deleted the archive but kept the extracted batches torchvision verified
        batches = sorted((root / CIFAR10.base_folder).iterdir())
        digest, digest_of = _sha256_files(batches), "python batches"
    identity = {
        "name": OFFICIAL_DATASET,
        "sha256": digest,
        "sha256_of": digest_of,
        "source": OFFICIAL_URL,
        "lossy": False,
    }

    def decode() -> CifarData:
        train, test = _official_split(root, train=True), _official_split(root, train=False)
        if tuple(train.classes) != CIFAR10_CLASSES:
            raise DataError(f"{root}: classes {train.classes} (expected {_CLASS_LIST})")
        return CifarData(
            _hwc_to_tensor(train.data),
            torch.as_tensor(train.targets, dtype=torch.int64),
            _hwc_to_tensor(test.data),
            torch.as_tensor(test.targets, dtype=torch.int64),
            list(CIFAR10_CLASSES),
            identity,
        )

    return _cached(cache, identity, decode)


def _official_split(root: Path, train: bool):
    from urllib.error import URLError

    from torchvision.datasets import CIFAR10

    try:
        return CIFAR10(str(root), train=train, download=True)
    except (URLError, OSError, RuntimeError) as err:
        raise DataError(
            f"could not download CIFAR-10 from {OFFICIAL_URL} into {root} ({err}); without internet, "
            f"pass a local copy: a folder-per-class tree or a .tar.gz of one ({_TREE_LAYOUT})"
        ) from None


def _hwc_to_tensor(images: np.ndarray) -> torch.Tensor:
    """[N, 32, 32, 3] uint8 (numpy/PIL layout) -> contiguous [N, 3, 32, 32] uint8."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------------------------------------------------
# Folder trees and .tar.gz archives of them
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ImageFile:
    split: str
    label: int
    where: str  # how messages name it: "/abs/tree/train/cat/0001.jpg" or "/abs/x.tar.gz:train/cat/0001.jpg"
    read: Callable[[], bytes]


def source_sha256(source: str | os.PathLike) -> str:
    """The sha256 that `load_cifar10(source)` records in identity["sha256"] for a folder tree or a .tar.gz
    (of the archive's bytes, or of a folder's file listing), computed without decoding any image."""
    path = _tree_source_path(Path(source).expanduser())
    return _listing_sha256(_list_folder(path)[0]) if path.is_dir() else _sha256_file(path)


def _tree_source_path(path: Path) -> Path:
    """The absolute path of an existing folder or .tar.gz, or a DataError."""
    path = path.absolute()
    if not path.exists():
        raise DataError(
            f"{path}: no such file or folder (expected a CIFAR-10 folder tree or a .tar.gz of one)"
        )
    if not path.is_dir() and not path.name.lower().endswith(ARCHIVE_SUFFIXES):
        raise DataError(
            f"{path}: not a folder or a .tar.gz archive (expected a CIFAR-10 tree: {_TREE_LAYOUT})"
        )
    return path


def _listing_sha256(listing: list) -> str:
    return _sha256_lines(f"{'/'.join(parts)}\t{size}\t{mtime}" for parts, _, size, mtime in listing)


def _load_tree_source(path: Path, cache: Path, expect_counts: bool, progress: bool) -> CifarData:
    path = _tree_source_path(path)
    if path.is_dir():
        listing, dirs = _list_folder(path)
        digest = _listing_sha256(listing)
        digest_of = "file listing (relative path, size, mtime)"
        name = dataset_name(path)

        def entries() -> tuple[list, set]:
            return [(parts, reader) for parts, reader, _, _ in listing], dirs

    else:
        digest, digest_of = _sha256_file(path), "archive"
        name = dataset_name(path, sha256=digest)

        def entries() -> tuple[list, set]:
            return _read_archive(path, progress)

    identity = {"name": name, "sha256": digest, "sha256_of": digest_of, "source": str(path)}

    def decode() -> CifarData:
        files, dirs = entries()
        separator = "/" if path.is_dir() else ":"
        by_split = _index_tree(files, dirs, str(path), separator, expect_counts)
        lossy = any(f.where.lower().endswith((".jpg", ".jpeg")) for f in by_split["train"])
        images = _decode_images(by_split["train"] + by_split["test"], progress)
        n_train = len(by_split["train"])
        labels = torch.tensor([f.label for f in by_split["train"] + by_split["test"]], dtype=torch.int64)
        return CifarData(
            images[:n_train],
            labels[:n_train],
            images[n_train:],
            labels[n_train:],
            list(CIFAR10_CLASSES),
            {"lossy": lossy},  # JPEG files are a lossy copy of CIFAR-10's pixels
        )

    return _cached(cache, identity, decode)


def _list_folder(root: Path) -> tuple[list, set[tuple[str, ...]]]:
    """Non-hidden files under root as (relative parts, reader, size, mtime_ns), sorted, and all folders."""
    files, dirs = [], set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = Path(dirpath).relative_to(root).parts
        dirs.update((*rel, d) for d in dirnames)  # so an empty class folder counts as present (and empty)
        for filename in filenames:
            if not filename.startswith("."):
                file = Path(dirpath, filename)
                stat = file.stat()
                files.append(((*rel, filename), file.read_bytes, stat.st_size, stat.st_mtime_ns))
    return sorted(files, key=lambda item: item[0]), dirs


def _read_archive(path: Path, progress: bool) -> tuple[list, set]:
    """All regular files of a .tar.gz, read into memory in one streaming pass (never extracted to disk)."""
    files, dirs = [], set()
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tqdm(tar, desc=f"reading {path.name}", unit=" files", disable=not progress):
                parts = tuple(p for p in PurePosixPath(member.name).parts if p not in (".", "/"))
                if not parts or any(p.startswith(".") for p in parts):
                    continue  # hidden entries, e.g. macOS "._0001.jpg" resource forks
                if member.isdir():
                    dirs.add(parts)
                elif member.isfile():
                    data = tar.extractfile(member).read()
                    files.append((parts, lambda data=data: data))
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(
            f"{path}: unreadable or truncated archive ({err}) (expected a .tar.gz of {_TREE_LAYOUT})"
        ) from None
    return files, dirs | _parent_dirs(parts for parts, _ in files)


def _parent_dirs(all_parts: Iterator[tuple[str, ...]]) -> set[tuple[str, ...]]:
    return {parts[:i] for parts in all_parts for i in range(1, len(parts))}


def _index_tree(
    files: list[tuple[tuple[str, ...], Callable[[], bytes]]],
    dirs: set[tuple[str, ...]],
    root: str,
    separator: str,
    expect_counts: bool,
) -> dict[str, list[_ImageFile]]:
    """Check the layout and return each split's images, sorted by (label, file name)."""
    # A tree packed with one wrapping folder (cifar10/train/...) reads like one without.
    top = {parts[0] for parts in dirs if len(parts) == 1}
    if not top & set(SPLITS) and len(top) == 1:
        (wrapper,) = top
        root = f"{root}{separator}{wrapper}"
        separator = "/"
        files = [(parts[1:], reader) for parts, reader in files if len(parts) > 1]
        dirs = {parts[1:] for parts in dirs if len(parts) > 1}

    for split in SPLITS:
        if (split,) not in dirs:
            raise DataError(f"{root}: missing folder {split}/ (expected {_TREE_LAYOUT})")
        class_dirs = {parts[1] for parts in dirs if len(parts) == 2 and parts[0] == split}
        for name in CIFAR10_CLASSES:
            if name not in class_dirs:
                raise DataError(
                    f"{root}{separator}{split}: missing class folder {name}/ "
                    f"(expected the 10 CIFAR-10 classes, in label order: {_CLASS_LIST})"
                )
        extra = sorted(class_dirs - set(CIFAR10_CLASSES))
        if extra:
            raise DataError(
                f"{root}{separator}{split}/{extra[0]}: unexpected folder "
                f"(expected only the 10 CIFAR-10 class folders: {_CLASS_LIST})"
            )

    label_of = {name: label for label, name in enumerate(CIFAR10_CLASSES)}
    by_split: dict[str, list[_ImageFile]] = {split: [] for split in SPLITS}
    for parts, reader in files:
        if parts[0] not in SPLITS:
            continue  # a README or licence beside train/ and test/
        where = f"{root}{separator}{'/'.join(parts)}"
        if len(parts) != 3:
            raise DataError(f"{where}: unexpected file (expected images only at {parts[0]}/<class>/<file>)")
        if not parts[2].lower().endswith(IMAGE_SUFFIXES):
            raise DataError(f"{where}: not an image file (expected {', '.join(IMAGE_SUFFIXES)} images only)")
        by_split[parts[0]].append(_ImageFile(parts[0], label_of[parts[1]], where, reader))

    counts = {}
    for split, split_files in by_split.items():
        split_files.sort(key=lambda f: (f.label, f.where))
        counts[split] = np.bincount([f.label for f in split_files], minlength=len(CIFAR10_CLASSES)).tolist()
    _check_counts(counts, f"{root}{separator}", expect_counts)
    return by_split


# ---------------------------------------------------------------------------------------------------------
# Validation and decoding
# ---------------------------------------------------------------------------------------------------------


def _label_counts(data: CifarData) -> dict[str, list[int]]:
    n = len(CIFAR10_CLASSES)
    return {
        "train": torch.bincount(data.train_labels.cpu(), minlength=n).tolist(),
        "test": torch.bincount(data.test_labels.cpu(), minlength=n).tolist(),
    }


def _check_counts(counts: dict[str, list[int]], prefix: str, expect_counts: bool) -> None:
    """Every class needs an image; with expect_counts, exactly CIFAR-10's 5,000 / 1,000 per class.

    prefix: how messages name the tree's root, ending in its separator ("/data/tree/", "/data/x.tar.gz:").
    """
    for split in SPLITS:
        expected = EXPECTED_PER_CLASS[split]
        for name, count in zip(CIFAR10_CLASSES, counts[split], strict=True):
            where = f"{prefix}{split}/{name}"
            if count == 0:
                raise DataError(f"{where}: no images (expected {expected:,} per class in {split}/)")
            if expect_counts and count != expected:
                raise DataError(
                    f"{where}: {count:,} images (expected {expected:,} per class, {expected * 10:,} in "
                    f"{split}/): use the complete CIFAR-10, e.g. --data path/to/cifar10.tar.gz, or no --data "
                    "for the official download (--budget smoke trains on a subset of it)"
                )


def _decode_images(files: list[_ImageFile], progress: bool) -> torch.Tensor:
    out = np.empty((len(files), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    with _strict_pil():
        for i, file in enumerate(tqdm(files, desc="decoding images", unit=" img", disable=not progress)):
            out[i] = _decode_image(file.read(), file.where)
    return _hwc_to_tensor(out)


def _decode_image(data: bytes, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size, mode = image.size, image.mode
            pixels = np.asarray(image) if (size, mode) == ((IMAGE_SIZE, IMAGE_SIZE), "RGB") else None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        # PIL names the in-memory buffer ("<_io.BytesIO object at 0x...>"), not the file: `where` does that
        reason = "not a known image format" if isinstance(err, UnidentifiedImageError) else err
        raise DataError(
            f"{where}: unreadable or truncated image ({reason}) (expected a complete 32x32 RGB image)"
        ) from None
    if pixels is None:
        raise DataError(f"{where}: {size[0]}x{size[1]} {mode} image (expected 32x32 RGB)")
    return pixels


@contextlib.contextmanager
def _strict_pil():
    """Make PIL raise on truncated files even if someone enabled LOAD_TRUNCATED_IMAGES globally."""
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before


# ---------------------------------------------------------------------------------------------------------
# The tensor cache
# ---------------------------------------------------------------------------------------------------------


def cache_path(cache_dir: Path, identity: dict) -> Path:
    """<cache_dir>/<name>-<first 16 hex of sha256>.v<format>.pt"""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", identity["name"]) or "data"
    return Path(cache_dir) / f"{slug}-{identity['sha256'][:16]}.v{CACHE_FORMAT}.pt"


def _cached(cache_dir: Path, identity: dict, decode: Callable[[], CifarData]) -> CifarData:
    path = cache_path(cache_dir, identity)
    if path.is_file():
        try:
            return _read_cache(path, identity)
        except Exception as err:  # a cache is disposable: rebuild it rather than fail
            warnings.warn(f"ignoring unreadable cache {path} ({err}); decoding again", stacklevel=3)
    data = decode()
    data.identity = {**identity, **data.identity}
    _write_cache(path, data)
    return data


def _read_cache(path: Path, identity: dict) -> CifarData:
    payload = torch.load(path, weights_only=True)
    if payload.get("format") != CACHE_FORMAT:
        raise ValueError(f"format {payload.get('format')}, expected {CACHE_FORMAT}")
    images = [payload[k] for k in ("train_images", "test_images")]
    if any(t.dtype != torch.uint8 or t.shape[1:] != (3, IMAGE_SIZE, IMAGE_SIZE) for t in images):
        raise ValueError("images are not uint8 [N, 3, 32, 32]")
    # The cached identity knows what decoding learnt (lossy); the source path is the one used now.
    return CifarData(
        payload["train_images"],
        payload["train_labels"],
        payload["test_images"],
        payload["test_labels"],
        list(payload["classes"]),
        {**payload["identity"], **identity},
    )


def _write_cache(path: Path, data: CifarData) -> None:
    """Atomic (results.atomic_write): a crash or a full disk never leaves a half-written cache."""
    payload = {
        "format": CACHE_FORMAT,
        "train_images": data.train_images,
        "train_labels": data.train_labels,
        "test_images": data.test_images,
        "test_labels": data.test_labels,
        "classes": list(data.classes),
        "identity": dict(data.identity),
    }
    try:
        atomic_write(path, lambda tmp: torch.save(payload, tmp))
    except OSError as err:  # a read-only or full cache folder costs speed next time, not this run
        warnings.warn(f"could not write the data cache {path} ({err})", stacklevel=3)


# ---------------------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------------------


def _first_per_class(labels: torch.Tensor, n: int, n_classes: int, split: str) -> torch.Tensor:
    if not isinstance(n, int) or n <= 0 or n % n_classes:
        raise ValueError(
            f"subset sizes must be positive multiples of {n_classes} (class-balanced), got {n!r}"
        )
    per_class = n // n_classes
    cpu_labels = labels.cpu()
    chosen = []
    for label in range(n_classes):
        members = (cpu_labels == label).nonzero().flatten()
        if per_class > len(members):
            raise ValueError(
                f"a subset of {n} {split} images needs {per_class} per class; "
                f"class {label} has only {len(members)}"
            )
        chosen.append(members[:per_class])
    return torch.cat(chosen).sort().values.to(labels.device)


def _sha256_file(path: Path) -> str:
    return file_sha256(path)


def _sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as file:
            for block in iter(lambda file=file: file.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _sha256_lines(lines: Iterator[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()
