"""`python -m resnet_repro imagenet ...`: the subcommand's options, for `resnet_repro.commands.cli` to mount.

The same command line runs one process or, under `torchrun`, one process per GPU on any number of
nodes (torchrun passes each process its rank through the environment).
"""

from __future__ import annotations

import argparse
import dataclasses

from resnet_repro.commands.types import field_flag, increasing_epochs, positive_int, worker_count
from resnet_repro.imagenet.config import (
    MILESTONE_EPOCHS,
    MILESTONES,
    PLATEAU_EPOCHS,
    ImageNetConfig,
)
from resnet_repro.models import SHORTCUT_OPTIONS

DEFAULTS = {f.name: f.default for f in dataclasses.fields(ImageNetConfig)}

EPILOG = f"""\
examples:
  # one GPU (or the CPU): ResNet-34 with shortcut option B, the paper's recipe
  python -m resnet_repro imagenet --data /datasets/imagenet --arch resnet34 --shortcut B

  # 8 GPUs on one node: the same options after torchrun's
  torchrun --standalone --nproc-per-node 8 -m resnet_repro imagenet --data /datasets/imagenet \\
      --arch resnet34 --shortcut B

  # 4 nodes x 8 GPUs: the same command on every node (the results folder on a shared file system)
  torchrun --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
      --rdzv-id resnet34b -m resnet_repro imagenet --data /datasets/imagenet --arch resnet34 --shortcut B

The data is the ImageFolder layout: <data>/train/<wnid>/*.JPEG and <data>/val/<wnid>/*.JPEG (ILSVRC's
val images sorted into class folders). The batch (256) is split over the processes. Schedules:
plateau = lr / 10 when the validation error stops improving (the paper; {PLATEAU_EPOCHS} epochs = its
60e4 iterations); milestones = lr / 10 at fixed epochs ({", ".join(map(str, MILESTONES))} of
{MILESTONE_EPOCHS}). Results go to <out>/imagenet/<run>/ (history.csv, run.json, model.pt); rerunning
the same command resumes an interrupted run, on any number of GPUs.
"""


def add_imagenet_parser(commands) -> argparse.ArgumentParser:
    """Add the `imagenet` subcommand to an `add_subparsers()` object; returns its parser."""
    parser = commands.add_parser(
        "imagenet",
        help="train an ImageNet network (Tables 2 and 3), on one GPU or many with torchrun",
        description="Train one ImageNet network with the paper's recipe (section 3.4): batch 256, SGD "
        "(momentum 0.9, weight decay 1e-4), lr 0.1 / 10 on plateaus, scale and colour augmentation, "
        "10-crop testing. Start it with torchrun for several GPUs or nodes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    def flag(group, name, note="", **parsing):
        field_flag(group, ImageNetConfig, name, note, **parsing)

    net = parser.add_argument_group("network and data")
    flag(net, "data", required=True, metavar="DIR")
    flag(net, "arch", metavar="ARCH")
    flag(net, "shortcut", choices=SHORTCUT_OPTIONS)
    flag(net, "seed", type=int)
    recipe = parser.add_argument_group("recipe (defaults: the paper's)")
    flag(recipe, "schedule")
    flag(recipe, "epochs", type=positive_int, metavar="N")
    flag(recipe, "milestones", type=increasing_epochs, metavar="E1,E2")
    flag(recipe, "patience", type=positive_int, metavar="N")
    flag(recipe, "batch_size", type=positive_int, metavar="N")
    flag(recipe, "crop_size", type=positive_int, metavar="PX")
    scale = (DEFAULTS["scale_min"], DEFAULTS["scale_max"])
    recipe.add_argument(  # one flag for two fields
        "--scale",
        type=positive_int,
        nargs=2,
        default=scale,
        metavar=("MIN", "MAX"),
        help=f"training: shorter side resized to a length in [MIN, MAX] (default {scale[0]} {scale[1]})",
    )
    flag(recipe, "test_size", type=positive_int, metavar="PX")
    flag(recipe, "mean_samples", type=positive_int, metavar="N")
    recipe.add_argument("--no-ten-crop", action="store_true", help="skip the final 10-crop test")
    run = parser.add_argument_group("running (none changes the result)")
    flag(run, "device")
    flag(run, "workers", type=worker_count, metavar="N")
    flag(run, "amp")
    flag(run, "channels_last")
    flag(run, "checkpoint_minutes", type=float, metavar="M")
    run.add_argument(
        "--stop-after-epochs",
        type=positive_int,
        metavar="N",
        help="checkpoint and exit after epoch N (job slots)",
    )
    run.add_argument("--out", metavar="DIR", help="results folder (default: data/results in the repository)")
    run.add_argument("--force", action="store_true", help="train again even if the run has finished")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def config_from_args(args: argparse.Namespace) -> ImageNetConfig:
    """The run a parsed `imagenet` command line asks for: each field from its flag, the two of --scale, and
    ten_crop unless --no-ten-crop."""
    values = {name: getattr(args, name) for name in DEFAULTS if hasattr(args, name)}
    values.update(milestones=tuple(args.milestones), scale_min=args.scale[0], scale_max=args.scale[1])
    return ImageNetConfig(**values, ten_crop=not args.no_ten_crop)


def run_imagenet(args: argparse.Namespace) -> int:
    """Train as the parsed arguments say (in every process torchrun started); print a summary on rank 0."""
    import os

    from resnet_repro.imagenet.train import train_imagenet
    from resnet_repro.runs.files import read_run_record
    from resnet_repro.runs.folders import is_finished

    config = config_from_args(args)
    folder = train_imagenet(
        config,
        results_dir=args.out,
        progress=not args.no_progress,
        force=args.force,
        stop_after_epochs=args.stop_after_epochs,
    )
    if os.environ.get("RANK", "0") == "0" and is_finished(folder):
        record = read_run_record(folder)
        view = record["final_test_view"]
        print(
            f"{folder.name}: {view} val error top-1 {record['final_test_error']:.2f}%, "
            f"top-5 {record['final_top5_error']:.2f}% after {record['budget']['epochs']} epochs -> {folder}"
        )
    return 0
