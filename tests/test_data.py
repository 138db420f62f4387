"""Loading CIFAR-10: the real shared archive, the tensor cache, and every bad-data case on toy trees;
subsets and the validation split on fake data."""

import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets
from fakes import FakeCIFAR10, fake_cifar, make_tar, make_tree, toy_pixels
from PIL import Image

import resnet_repro.cifar.data as data_module
from resnet_repro.cifar.data import (
    CIFAR10_CLASSES,
    OFFICIAL_URL,
    CifarData,
    DataError,
    cache_path,
    load_cifar10,
    split_validation,
    take_subset,
)
from resnet_repro.runs.folders import JPEG_ARCHIVE_SHA256

# ---------------------------------------------------------------------------------------------------------
# Toy trees (fakes.make_tree: generated, never images from CIFAR-10)
# ---------------------------------------------------------------------------------------------------------


def load_toy(source: Path, cache_dir: Path, **kwargs) -> CifarData:
    return load_cifar10(source, cache_dir=cache_dir, expect_counts=False, progress=False, **kwargs)


def expect_error(source: Path, cache_dir: Path, *fragments: str, expect_counts: bool = False) -> str:
    """Loading must fail with a one-line DataError containing every fragment (file name and expectation)."""
    with pytest.raises(DataError) as caught:
        load_cifar10(source, cache_dir=cache_dir, expect_counts=expect_counts, progress=False)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert not list(cache_dir.glob("*.pt")), "a failed load must not leave a cache behind"
    return message


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "toy")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


# ---------------------------------------------------------------------------------------------------------
# The real archive (../shared)
# ---------------------------------------------------------------------------------------------------------


def test_shared_archive_loads_as_cifar10(cifar_jpeg: CifarData, shared_archive: Path):
    data = cifar_jpeg
    assert data.train_images.shape == (50_000, 3, 32, 32) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (10_000, 3, 32, 32) and data.test_images.dtype == torch.uint8
    assert data.train_labels.dtype == data.test_labels.dtype == torch.int64
    assert data.train_labels.bincount().tolist() == [5000] * 10
    assert data.test_labels.bincount().tolist() == [1000] * 10
    assert data.classes == list(CIFAR10_CLASSES)
    assert data.identity == {
        "name": "cifar10-jpeg",
        "sha256": JPEG_ARCHIVE_SHA256,
        "sha256_of": "archive",
        "source": str(shared_archive),
        "lossy": True,
    }
    # Channel order and layout: CIFAR-10's well-known per-channel means (R > G > B), and blue skies
    # make airplanes and ships bluer than the average image.
    channel_means = data.train_images[::10].float().mean(dim=(0, 2, 3)) / 255
    assert torch.allclose(channel_means, torch.tensor([0.491, 0.482, 0.447]), atol=0.02)
    planes_and_ships = torch.isin(data.train_labels, torch.tensor([0, 8]))
    blue = data.train_images[:, 2].float().mean(dim=(1, 2))
    assert blue[planes_and_ships].mean() > blue[~planes_and_ships].mean() + 10


def test_second_load_of_the_archive_comes_from_the_cache(cifar_jpeg, shared_archive, monkeypatch):
    assert cache_path(data_module.default_cache_dir(), cifar_jpeg.identity).is_file()
    monkeypatch.setattr(data_module, "_decode_images", _must_not_decode)
    start = time.perf_counter()
    again = load_cifar10(shared_archive, progress=False)
    assert time.perf_counter() - start < 5
    assert torch.equal(again.test_images, cifar_jpeg.test_images)


# ---------------------------------------------------------------------------------------------------------
# Subsets and the validation split: index bookkeeping, so fake data in memory shows it (no decoding)
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_data() -> CifarData:
    """600 training and 50 test images per class: room for the sizes the runs use (1,000/200 subsets,
    the 5,000-image validation split) and too few for 60,000. Read-only, like cifar_jpeg."""
    return fake_cifar(n_train=6000, n_test=500)


def test_subset_is_class_balanced_and_deterministic(fake_data):
    small = take_subset(fake_data, (1000, 200))
    assert small.train_labels.bincount().tolist() == [100] * 10
    assert small.test_labels.bincount().tolist() == [20] * 10
    assert small.identity == {**fake_data.identity, "subset": [1000, 200]}
    assert torch.equal(take_subset(fake_data, (1000, 200)).train_images, small.train_images)
    same_size = take_subset(fake_data, 500)
    assert len(same_size.train_labels) == len(same_size.test_labels) == 500


@pytest.mark.parametrize("bad", [15, 0, -10, (1000, 7), 60_000])
def test_subset_rejects_sizes_that_cannot_be_balanced(fake_data, bad):
    with pytest.raises(ValueError, match="subset"):
        take_subset(fake_data, bad)


def test_validation_split_holds_out_5k_balanced_training_images(fake_data):
    split = split_validation(fake_data)
    assert len(split.train_labels) == 1_000 and len(split.test_labels) == 5_000  # of 6,000
    assert split.test_labels.bincount().tolist() == [500] * 10
    assert split.identity == {**fake_data.identity, "validation": {"size": 5000, "seed": 0}}
    assert torch.equal(split_validation(fake_data).test_images, split.test_images)  # seeded
    assert not torch.equal(split_validation(fake_data, seed=1).test_images, split.test_images)


# ---------------------------------------------------------------------------------------------------------
# Toy trees: decoding, archives, identity, cache
# ---------------------------------------------------------------------------------------------------------


def test_folder_tree_decodes_exact_pixels_labels_and_order(tree, cache):
    data = load_toy(tree, cache)
    assert data.train_images.shape == (30, 3, 32, 32) and data.test_images.shape == (20, 3, 32, 32)
    assert data.train_labels.tolist() == [label for label in range(10) for _ in range(3)]
    for i, label in enumerate(data.train_labels.tolist()):
        expected = torch.from_numpy(toy_pixels("train", label, i % 3)).permute(2, 0, 1)
        assert torch.equal(data.train_images[i], expected)
    assert data.identity["name"] == "toy" and data.identity["lossy"] is False
    assert data.identity["sha256_of"].startswith("file listing")


@pytest.mark.parametrize("wrapper", [None, "cifar10"])
def test_tar_gz_gives_the_same_tensors_as_its_folder(tree, cache, tmp_path, wrapper):
    from_folder = load_toy(tree, cache)
    archive = make_tar(tree, tmp_path / "mine.tar.gz", wrapper)
    from_tar = load_toy(archive, cache)
    for key in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(from_tar, key), getattr(from_folder, key))
    assert from_tar.identity["name"] == "mine" and from_tar.identity["sha256_of"] == "archive"
    assert from_tar.identity["source"] == str(archive)


def test_subset_argument_keeps_the_first_images_of_each_class(tree, cache):
    full = load_toy(tree, cache)
    small = load_toy(tree, cache, subset=(20, 10))
    assert small.train_labels.tolist() == [label for label in range(10) for _ in range(2)]
    assert torch.equal(small.train_images[1], full.train_images[1])  # airplane's second image
    assert small.test_labels.tolist() == list(range(10)) and small.identity["subset"] == [20, 10]
    assert repr(small.to("cpu")) == "CifarData(toy: 20 train, 10 test images on cpu)"


def test_jpeg_tree_is_marked_lossy(tmp_path, cache):
    data = load_toy(make_tree(tmp_path / "jpegs", suffix=".jpg"), cache)
    assert data.identity["lossy"] is True


def _must_not_decode(*args, **kwargs):
    raise AssertionError("decoded again instead of using the cache")


def test_cache_is_written_atomically_then_used(tree, cache, monkeypatch):
    first = load_toy(tree, cache)
    assert [p.name for p in cache.iterdir()] == [cache_path(cache, first.identity).name]  # no temp files left
    monkeypatch.setattr(data_module, "_decode_images", _must_not_decode)
    second = load_toy(tree, cache)
    assert torch.equal(second.train_images, first.train_images) and second.identity == first.identity


def test_editing_a_folder_invalidates_its_cache(tree, cache):
    load_toy(tree, cache)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tree / "test" / "cat" / "0000.png")
    assert load_toy(tree, cache).test_images[3 * 2].max() == 0  # cat is label 3, its first test image
    assert len(list(cache.glob("*.pt"))) == 2


def test_unreadable_cache_is_rebuilt_with_a_warning(tree, cache):
    first = load_toy(tree, cache)
    cache_path(cache, first.identity).write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable cache"):
        again = load_toy(tree, cache)
    assert torch.equal(again.train_images, first.train_images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_toy(tree, cache)  # rebuilt: quiet again


def test_a_full_disk_while_caching_warns_trains_on_and_leaves_no_partial_cache(tree, cache, monkeypatch):
    def fill_the_disk(payload, tmp):  # what torch.save raises when the disk fills under it
        Path(tmp).write_bytes(b"the first part of the cache")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 146688 vs 146584")

    monkeypatch.setattr(data_module.torch, "save", fill_the_disk)
    with pytest.warns(UserWarning, match="could not write the data cache .*not written"):
        loaded = load_toy(tree, cache)
    assert len(loaded.train_images) > 0 and list(cache.iterdir()) == []


def test_full_counts_are_enforced_by_default_also_on_a_cache_hit(tree, cache, monkeypatch):
    load_toy(tree, cache)  # cached with expect_counts=False
    monkeypatch.setattr(data_module, "_decode_images", _must_not_decode)
    with pytest.raises(DataError, match=f"^{tree}/train/airplane: 3 images .expected 5,000 per class"):
        load_cifar10(tree, cache_dir=cache, progress=False)


def test_validation_split_is_a_disjoint_partition_of_train(tree, cache):
    data = load_toy(tree, cache)
    split = split_validation(data, size=10, seed=3)
    assert split.test_labels.tolist() == list(range(10))  # one per class, order kept
    rows = {tuple(img.flatten()[:3].tolist()) for img in data.train_images}
    train_rows = [tuple(img.flatten()[:3].tolist()) for img in split.train_images]
    held_rows = [tuple(img.flatten()[:3].tolist()) for img in split.test_images]
    assert len(set(train_rows) | set(held_rows)) == len(train_rows) + len(held_rows) == len(rows)
    with pytest.raises(ValueError, match="none to train on"):
        split_validation(data, size=30)


# ---------------------------------------------------------------------------------------------------------
# Every bad-data case: one line naming the file or folder and what was expected
# ---------------------------------------------------------------------------------------------------------


def test_missing_path(tmp_path, cache):
    expect_error(tmp_path / "nowhere", cache, str(tmp_path / "nowhere"), "no such file or folder")


def test_not_a_folder_or_tar_gz(tmp_path, cache):
    other = tmp_path / "cifar.zip"
    other.write_bytes(b"PK")
    expect_error(other, cache, str(other), "not a folder or a .tar.gz")


def test_missing_split_folder(tree, cache):
    for file in (tree / "test").rglob("*.png"):
        file.unlink()
    for folder in sorted((tree / "test").rglob("*"), reverse=True):
        folder.rmdir()
    (tree / "test").rmdir()
    expect_error(tree, cache, str(tree), "missing folder test/", "expected train/<class>/")


def test_missing_class_folder(tree, cache):
    for file in (tree / "train" / "cat").iterdir():
        file.unlink()
    (tree / "train" / "cat").rmdir()
    expect_error(tree, cache, f"{tree}/train", "missing class folder cat/", "airplane, automobile, bird")


def test_unexpected_class_folder(tree, cache):
    (tree / "test" / "unicorn").mkdir()
    expect_error(tree, cache, f"{tree}/test/unicorn", "unexpected folder", "only the 10 CIFAR-10 class")


def test_empty_class_folder(tree, cache):
    for file in (tree / "test" / "frog").iterdir():
        file.unlink()
    expect_error(tree, cache, f"{tree}/test/frog", "no images", "expected 1,000 per class")


@pytest.mark.parametrize(
    ("size", "mode", "found"),
    [((28, 28), "RGB", "28x28 RGB"), ((32, 32), "L", "32x32 L"), ((32, 32), "RGBA", "RGBA")],
)
def test_wrong_image_size_or_mode(tree, cache, size, mode, found):
    bad = tree / "train" / "dog" / "0001.png"
    Image.new(mode, size).save(bad)
    expect_error(tree, cache, str(bad), found, "expected 32x32 RGB")


@pytest.mark.parametrize("keep", [0, 40, -12])
def test_unreadable_or_truncated_image(tmp_path, cache, keep):
    tree = make_tree(tmp_path / "jpegs", suffix=".jpg")
    bad = tree / "test" / "ship" / "0001.jpg"
    bad.write_bytes(bad.read_bytes()[:keep])
    expect_error(
        tree, cache, str(bad), "unreadable or truncated image", "expected a complete 32x32 RGB image"
    )


def test_file_that_is_not_an_image(tree, cache):
    stray = tree / "train" / "horse" / "notes.txt"
    stray.write_text("hello")
    expect_error(tree, cache, str(stray), "not an image file", ".png, .jpg, .jpeg")


def test_file_outside_a_class_folder(tree, cache):
    stray = tree / "train" / "0001.png"
    Image.fromarray(toy_pixels("train", 0, 0)).save(stray)
    expect_error(tree, cache, str(stray), "unexpected file", "train/<class>/<file>")


def test_hidden_files_and_a_readme_beside_the_splits_are_ignored(tree, cache):
    (tree / "README.md").write_text("my tree")
    (tree / "train" / "cat" / ".DS_Store").write_bytes(b"\0")
    assert len(load_toy(tree, cache).train_labels) == 30


def test_bad_image_inside_an_archive_is_named_by_its_member_path(tree, cache, tmp_path):
    Image.new("RGB", (16, 16)).save(tree / "train" / "bird" / "0002.png")
    archive = make_tar(tree, tmp_path / "mine.tar.gz")
    expect_error(archive, cache, f"{archive}:train/bird/0002.png", "16x16 RGB", "expected 32x32 RGB")


def test_missing_class_inside_an_archive(tree, cache, tmp_path):
    for file in (tree / "test" / "truck").iterdir():
        file.unlink()
    (tree / "test" / "truck").rmdir()
    archive = make_tar(tree, tmp_path / "mine.tar.gz")
    expect_error(archive, cache, f"{archive}:test", "missing class folder truck/")


def test_truncated_archive(tree, cache, tmp_path):
    archive = make_tar(tree, tmp_path / "mine.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    expect_error(archive, cache, str(archive), "unreadable or truncated archive", "expected a .tar.gz of")


def test_wrong_count_in_the_full_check(tree, cache):
    message = expect_error(
        tree,
        cache,
        f"{tree}/train/airplane",
        "3 images",
        "expected 5,000 per class, 50,000",
        "use the complete CIFAR-10",
        "or no --data for the official download",
        expect_counts=True,
    )
    assert "expect_counts" not in message  # the command line offers no such thing


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n"])
def test_unreadable_image_in_an_archive_is_named_by_its_member_path_not_a_buffer(
    tree, cache, tmp_path, content
):
    (tree / "train" / "frog" / "0001.png").write_bytes(content)
    archive = make_tar(tree, tmp_path / "mine.tar.gz")
    message = expect_error(archive, cache, f"{archive}:train/frog/0001.png: unreadable or truncated image")
    assert "BytesIO" not in message and " at 0x" not in message


# ---------------------------------------------------------------------------------------------------------
# The official source, through a stand-in for torchvision's CIFAR10 (no internet here)
# ---------------------------------------------------------------------------------------------------------


def test_official_source_converts_torchvision_arrays_and_caches(monkeypatch, cache):
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    FakeCIFAR10.constructed = 0
    data = load_cifar10(None, cache_dir=cache, expect_counts=False, progress=False)
    reference = FakeCIFAR10(cache, train=True)
    assert torch.equal(data.train_images, torch.from_numpy(reference.data).permute(0, 3, 1, 2))
    assert data.train_labels.tolist() == reference.targets and data.train_labels.dtype == torch.int64
    assert data.train_images.is_contiguous() and data.test_images.shape == (10, 3, 32, 32)
    assert data.identity["name"] == "cifar10" and data.identity["lossy"] is False
    assert data.identity["source"] == OFFICIAL_URL
    FakeCIFAR10.constructed = 0
    again = load_cifar10("official", cache_dir=cache, expect_counts=False, progress=False)
    assert FakeCIFAR10.constructed == 0 and torch.equal(again.test_images, data.test_images)
    with pytest.raises(DataError, match="expected 5,000 per class"):
        load_cifar10("official", cache_dir=cache, progress=False)


def test_official_download_failure_says_how_to_use_a_local_copy(monkeypatch, cache):
    class Offline(FakeCIFAR10):
        def __init__(self, root, train=True, download=False):
            raise RuntimeError("Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", Offline)
    expect_error(None, cache, "could not download CIFAR-10", OFFICIAL_URL, "pass a local copy")
