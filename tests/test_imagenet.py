"""The ImageNet path on the CPU: a tiny generated ImageFolder, 32-pixel crops, one and two processes (gloo).

The images are random toy data written by the tests; nothing here needs ImageNet.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from resnet_repro.cifar.data import DataError
from resnet_repro.commands.imagenet import add_imagenet_parser, run_imagenet
from resnet_repro.imagenet import ImageNetConfig, check_image_folder
from resnet_repro.imagenet.data import (
    EpochSampler,
    Geometry,
    PCALighting,
    RandomScaleCrop,
    SeededImages,
    average_crop_scores,
    center_crop_transform,
    list_images,
    read_image,
    shard_indices,
    ten_crop_transform,
    train_transform,
)
from resnet_repro.imagenet.train import MODEL_FILE, Run, run_folder, train_imagenet, weights_digest
from resnet_repro.runs.loaders import load_histories, load_runs

CLASSES = ("n01440764", "n01443537", "n01484850")
SMALL = Geometry(crop=32, scale_min=36, scale_max=48, test_size=36)
# resnet18 on 32-pixel crops (stages at 8, 4, 2, 1 pixels), 8 images a step: a few seconds per run.
TINY = {
    "arch": "resnet18",
    "epochs": 2,
    "batch_size": 8,
    "crop_size": SMALL.crop,
    "scale_min": SMALL.scale_min,
    "scale_max": SMALL.scale_max,
    "test_size": SMALL.test_size,
    "workers": 0,
}


def make_image_folder(root: Path, train_per_class: int = 8, val_per_class: int = 4) -> Path:
    """train/<wnid>/*.JPEG and val/<wnid>/*.JPEG: random images, landscape and portrait, tinted by class."""
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for label, wnid in enumerate(CLASSES):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for i in range(count):
                height, width = (40, 52) if i % 2 else (50, 40)
                image = torch.rand(height, width, 3, generator=generator) * 80 + 60 * label
                Image.fromarray(image.to(torch.uint8).numpy()).save(folder / f"{wnid}_{i}.JPEG", "JPEG")
    return root


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on a small shared machine, two threads stall on each other's barriers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("imagenet"))


# ---------------------------------------------------------------------------------------------------------
# Views and augmentation
# ---------------------------------------------------------------------------------------------------------


def random_image(height: int = 40, width: int = 52) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_views_have_the_crop_size_and_ten_crop_is_corners_center_and_mirror():
    image = random_image()
    zero = torch.zeros(3, SMALL.crop, SMALL.crop)
    torch.manual_seed(0)
    assert train_transform(SMALL, zero)(image).shape == (3, 32, 32)
    center = center_crop_transform(SMALL, zero)(image)
    crops = ten_crop_transform(SMALL, zero)(image)
    assert center.shape == (3, 32, 32) and crops.shape == (10, 3, 32, 32)
    assert torch.equal(crops[4], center)  # view 4: the center crop, as the single-view test sees it
    assert torch.equal(crops[9], center.flip(-1))  # view 9: the center crop of the mirror image
    assert torch.equal(crops[5], crops[1].flip(-1))  # mirror's top-left = the top-right, mirrored
    assert len({c.sum().item() for c in crops[:4]}) == 4  # four distinct corners


def test_mean_is_subtracted_from_every_view():
    image = random_image()
    mean = torch.rand(3, 32, 32)
    plain = center_crop_transform(SMALL, mean=None)(image)
    assert torch.allclose(center_crop_transform(SMALL, mean)(image), plain - mean)
    crops = ten_crop_transform(SMALL, mean)(image) - ten_crop_transform(SMALL, torch.zeros(3, 32, 32))(image)
    assert torch.allclose(crops, -mean.expand(10, -1, -1, -1))


def test_scale_augmentation_draws_the_shorter_side_in_range():
    scale_crop = train_transform(SMALL, torch.zeros(3, 32, 32)).transforms[0]
    assert isinstance(scale_crop, RandomScaleCrop)
    draws = [scale_crop.draw(40, 50) for _ in range(300)]  # a portrait image: the width is the shorter side
    sides = {width for width, *_ in draws}
    assert sides == set(range(SMALL.scale_min, SMALL.scale_max + 1))  # every length, nothing outside
    assert all(abs(height - 50 * width / 40) <= 0.5 for width, height, *_ in draws)  # aspect kept
    assert all(0 <= left <= w - 32 and 0 <= top <= h - 32 for w, h, left, top in draws)


def test_scale_crop_gives_the_pixels_of_resizing_the_whole_image_then_cropping():
    image = random_image(375, 500)
    scale_crop = RandomScaleCrop(crop=224, scale_min=256, scale_max=480)
    for seed in range(5):
        torch.manual_seed(seed)
        width, height, left, top = scale_crop.draw(*image.size)
        whole = image.resize((width, height), Image.Resampling.BILINEAR)  # what v2.Resize does to PIL images
        expected = np.asarray(whole.crop((left, top, left + 224, top + 224)), dtype=int)
        torch.manual_seed(seed)
        assert np.abs(np.asarray(scale_crop(image), dtype=int) - expected).max() <= 2  # of 255: rounding


def test_pca_lighting_shifts_each_channel_by_one_amount():
    image = torch.rand(3, 8, 8)
    torch.manual_seed(1)
    shift = PCALighting()(image) - image
    assert torch.allclose(shift, shift[:, :1, :1].expand_as(shift), atol=1e-6)  # uniform per channel
    shifts = torch.stack([(PCALighting()(image) - image)[:, 0, 0] for _ in range(2000)])
    # Mostly along the first principal component (nearly equal in R, G, B), sd ~ 0.1 * 0.2175 * 0.58.
    assert shifts.mean(0).abs().max() < 0.003 and 0.009 < shifts[:, 0].std() < 0.016


def test_average_crop_scores_shapes():
    logits = torch.randn(4 * 10, 7)
    scores = average_crop_scores(logits, crops=10)
    assert scores.shape == (4, 7)
    assert torch.allclose(scores.sum(dim=1), torch.ones(4))
    assert torch.allclose(scores[2], logits[20:30].softmax(dim=1).mean(dim=0))  # image 2 = rows 20..29
    with pytest.raises(ValueError, match="crops|logits"):
        average_crop_scores(torch.randn(15, 7), crops=10)


# ---------------------------------------------------------------------------------------------------------
# Sampling: seeded per image, sharded per process
# ---------------------------------------------------------------------------------------------------------


def test_augmentation_depends_only_on_seed_epoch_and_image(image_folder):
    samples = list_images(image_folder, "train")
    dataset = SeededImages(samples, train_transform(SMALL, torch.zeros(3, 32, 32)), seed=3)
    first, _ = dataset[(1, 5)]
    dataset[(0, 2)]  # drawing other images in between changes nothing
    assert torch.equal(dataset[(1, 5)][0], first)
    assert not torch.equal(dataset[(2, 5)][0], first)  # another epoch, another augmentation


def test_epoch_sampler_gives_the_same_global_batches_for_any_process_count():
    size, batch, epoch = 50, 8, 4
    alone = EpochSampler(size, rank=0, world=1, seed=7)
    alone.start(epoch)
    one = [index for _, index in alone]
    for world in (2, 4):
        shards = []
        for rank in range(world):
            sampler = EpochSampler(size, rank, world, seed=7)
            sampler.start(epoch)
            shards.append([index for _, index in sampler])
        for step in range(size // batch):
            per = batch // world
            together = sorted(i for shard in shards for i in shard[step * per : (step + 1) * per])
            assert together == sorted(one[step * batch : (step + 1) * batch])
    skipped = EpochSampler(size, rank=1, world=2, seed=7)
    skipped.start(epoch, skip=8)
    assert [i for _, i in skipped] == shards_of(size, 1, 2, 7, epoch)[8:]
    assert all(e == epoch for e, _ in skipped)


def shards_of(size, rank, world, seed, epoch):
    sampler = EpochSampler(size, rank, world, seed)
    sampler.start(epoch)
    return [i for _, i in sampler]


def test_evaluation_shards_cover_every_image_once():
    shards = [shard_indices(11, rank, 4) for rank in range(4)]
    assert sorted(i for s in shards for i in s) == list(range(11))


# ---------------------------------------------------------------------------------------------------------
# Malformed folders
# ---------------------------------------------------------------------------------------------------------


def test_good_folder_lists_classes_and_images(image_folder):
    assert check_image_folder(image_folder) == list(CLASSES)
    samples = list_images(image_folder, "val")
    assert len(samples) == 12 and {label for _, label in samples} == {0, 1, 2}


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: root / "nowhere", "no such folder"),
        (lambda root: _remove(root / "val"), "val: missing"),
        (lambda root: _flatten(root / "val"), "directly in the folder"),
        (lambda root: _rename(root / "val" / CLASSES[0], root / "val" / "n99999999"), "different classes"),
    ],
)
def test_malformed_folder_is_one_clear_error(tmp_path, damage, message):
    root = make_image_folder(tmp_path / "data", train_per_class=1, val_per_class=1)
    root = damage(root) or root
    with pytest.raises(DataError, match=message) as info:
        check_image_folder(root)
    assert "\n" not in str(info.value)


def test_empty_class_and_unreadable_image_are_named(tmp_path):
    root = make_image_folder(tmp_path / "data", train_per_class=1, val_per_class=1)
    empty = root / "train" / CLASSES[1]
    for file in empty.iterdir():
        file.unlink()
    with pytest.raises(DataError, match=CLASSES[1]):
        list_images(root, "train")
    broken = root / "val" / CLASSES[0] / "broken.JPEG"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match="broken.JPEG: unreadable"):
        read_image(str(broken))


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder)


def _flatten(folder: Path) -> None:
    for class_folder in list(folder.iterdir()):
        for file in class_folder.iterdir():
            file.rename(folder / file.name)
        class_folder.rmdir()


def _rename(old: Path, new: Path) -> None:
    old.rename(new)


# ---------------------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------------------


def test_config_defaults_are_the_papers_and_mistakes_are_refused():
    config = ImageNetConfig(data="x")
    assert (config.arch, config.shortcut, config.batch_size, config.epochs) == ("resnet34", "A", 256, 120)
    assert ImageNetConfig(data="x", arch="resnet50").shortcut == "B"
    assert ImageNetConfig(data="x", schedule="milestones").epochs == 90
    assert config.run_name() == "resnet34-A-plateau-seed0" and config.budget_label() == "imagenet"
    assert ImageNetConfig(data="x", arch="plain34").run_name() == "plain34-plateau-seed0"
    assert ImageNetConfig(data="x", **TINY).run_name() == "resnet18-A-plateau-seed0-b8-crop32"
    for bad in ({"arch": "resnet20"}, {"shortcut": "D"}, {"epochs": 0}, {"milestones": (60, 30)}):
        with pytest.raises(ValueError):
            ImageNetConfig(data="x", **bad)
    with pytest.raises(ValueError, match="no shortcuts"):
        ImageNetConfig(data="x", arch="plain18", shortcut="B")
    with pytest.raises(ValueError, match="unknown config field"):
        ImageNetConfig.from_dict({"data": "x", "lr": 0.2})
    with pytest.raises(ValueError, match="crop"):
        ImageNetConfig(data="x", crop_size=300)


def test_batch_must_divide_over_the_processes(image_folder, tmp_path, monkeypatch):
    monkeypatch.setattr("resnet_repro.imagenet.train.start_processes", lambda device: _FakeProcesses(3))
    with pytest.raises(ValueError, match="does not divide over 3 processes"):
        train_imagenet(ImageNetConfig(data=str(image_folder), **TINY), tmp_path, progress=False)


class _FakeProcesses:
    def __init__(self, world):
        self.world, self.main = world, True

    def stop(self):
        pass


# ---------------------------------------------------------------------------------------------------------
# Training: one process through the command line, then two processes with gloo
# ---------------------------------------------------------------------------------------------------------


def _command_line(image_folder: Path, out: Path, workers: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_imagenet_parser(parser.add_subparsers(dest="command"))
    sizes = ["--crop-size", "32", "--scale", "36", "48", "--test-size", "36", "--batch-size", "8"]
    argv = ["imagenet", "--data", str(image_folder), "--arch", "resnet18", "--epochs", "1", *sizes]
    return parser.parse_args([*argv, "--workers", str(workers), "--no-progress", "--out", str(out)])


@pytest.fixture(scope="module")
def one_epoch_run(image_folder, tmp_path_factory) -> tuple[argparse.Namespace, Path]:
    """One epoch (3 steps) of resnet18 on one process, through the command line, with a loader worker."""
    args = _command_line(image_folder, tmp_path_factory.mktemp("results"), workers=1)
    assert run_imagenet(args) == 0
    return args, Path(args.out) / "imagenet" / "imagenet-1ep" / "resnet18-A-plateau-seed0-b8-crop32"


def test_command_line_trains_one_process_into_a_run_folder(one_epoch_run):
    args, folder = one_epoch_run
    record = json.loads((folder / "run.json").read_text())
    assert record["final_test_view"] == "10-crop"
    assert set(record["evaluations"]) == {"center_crop", "ten_crop"}
    assert record["provenance"]["dataset"]["train_images"] == 24 and record["replicas"]["identical"]
    assert record["budget"]["iterations"] == 3  # 24 images / 8 a step
    assert not (folder / "checkpoint.pt").exists() and (folder / MODEL_FILE).is_file()
    runs = load_runs(args.out)  # the book's reader takes ImageNet runs like CIFAR-10 ones
    assert runs.loc[0, "experiment"] == "imagenet-1ep" and runs.loc[0, "arch"] == "resnet18"
    assert list(load_histories(args.out)["test_error"]) == [
        record["evaluations"]["center_crop"]["top1_error"]
    ]
    written = (folder / "run.json").stat().st_mtime_ns
    assert run_imagenet(args) == 0  # finished: a second call trains nothing
    assert (folder / "run.json").stat().st_mtime_ns == written


def test_ctrl_c_mid_epoch_checkpoints_and_the_resumed_run_is_the_same(one_epoch_run, tmp_path, monkeypatch):
    """Stopped by Ctrl-C after step 2 of 3, resumed: bit-for-bit the uninterrupted run (which used a
    loader worker, this one none: per-image seeding makes the workers irrelevant)."""
    _, whole = one_epoch_run
    args = _command_line(Path(_data_of(whole)), tmp_path, workers=0)
    monkeypatch.setattr("resnet_repro.imagenet.train.SYNC_EVERY", 1)
    step = Run.step

    def step_then_ctrl_c(self, images, labels):
        step(self, images, labels)
        if self.state.iteration == 2 and len(self.state.sessions) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # what a terminal's Ctrl-C sends

    monkeypatch.setattr(Run, "step", step_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        run_imagenet(args)
    folder = tmp_path / whole.relative_to(whole.parents[2])
    checkpoint = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert (checkpoint["state"]["epoch"], checkpoint["state"]["step"]) == (0, 2)
    assert not (folder / "run.json").exists()
    assert run_imagenet(args) == 0
    pd.testing.assert_frame_equal(pd.read_csv(whole / "history.csv"), pd.read_csv(folder / "history.csv"))
    records = [json.loads((f / "run.json").read_text()) for f in (whole, folder)]
    assert records[0]["replicas"]["weights_sha256"] == records[1]["replicas"]["weights_sha256"]
    assert records[0]["evaluations"] == records[1]["evaluations"]
    assert len(records[1]["sessions"]) == 2


def test_a_run_leaves_the_signal_handlers_as_it_found_them(image_folder, tmp_path):
    """Ctrl-C and SIGTERM checkpoint only while training; afterwards they do what they did before."""
    before = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    assert run_imagenet(_command_line(image_folder, tmp_path, workers=0)) == 0
    assert {number: signal.getsignal(number) for number in before} == before


def _data_of(folder: Path) -> str:
    return json.loads((folder / "run.json").read_text())["config"]["data"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_process_worker(rank: int, world: int, port: int, data: str, out: str) -> None:
    """One of the processes torchrun would start: the same environment, then three trainings."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)  # two processes on a shared 2-core machine
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        config = ImageNetConfig(data=data, **TINY)
        train_imagenet(config, Path(out) / "whole", progress=False)
        train_imagenet(config, Path(out) / "resumed", progress=False, stop_after_epochs=1)
        train_imagenet(config, Path(out) / "resumed", progress=False)
    finally:
        dist.destroy_process_group()


def test_two_processes_agree_and_a_resumed_run_equals_an_uninterrupted_one(image_folder, tmp_path):
    mp.spawn(_two_process_worker, args=(2, _free_port(), str(image_folder), str(tmp_path)), nprocs=2)
    config = ImageNetConfig(data=str(image_folder), **TINY)
    whole, resumed = run_folder(config, tmp_path / "whole"), run_folder(config, tmp_path / "resumed")
    records = [json.loads((folder / "run.json").read_text()) for folder in (whole, resumed)]
    weights = [torch.load(folder / MODEL_FILE, weights_only=True)["model"] for folder in (whole, resumed)]
    for record, state in zip(records, weights, strict=True):
        # Both processes ended with bitwise identical weights and batch-norm statistics: these ones.
        assert record["replicas"] == {
            "processes": 2,
            "weights_sha256": weights_digest(state),
            "identical": True,
        }
        assert record["provenance"]["backend"] == "gloo"
    assert [s["processes"] for s in records[1]["sessions"]] == [2, 2]  # stopped once, resumed once
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    pd.testing.assert_frame_equal(pd.read_csv(whole / "history.csv"), pd.read_csv(resumed / "history.csv"))
    assert records[0]["evaluations"] == records[1]["evaluations"]
    assert len(pd.read_csv(whole / "history.csv")) == 2 and records[0]["budget"]["iterations"] == 6
