"""`python -m resnet_repro imagenet ...`: the subcommand's options, for `resnet_repro.commands.cli` to mount.

The same command line runs one process or, under `torchrun`, one process per GPU on any number of
nodes (torchrun passes each process its rank through the environment).
"""

from __future__ import annotations

import argparse
import dataclasses

from resnet_repro.commands.types import increasing_epochs, positive_int, worker_count
from resnet_repro.imagenet.config import (
    ARCHS,
    MILESTONE_EPOCHS,
    MILESTONES,
    PLATEAU_EPOCHS,
    PLATEAU_PATIENCE,
    SCHEDULES,
    ImageNetConfig,
)
from resnet_repro.models import SHORTCUT_OPTIONS
from resnet_repro.runs.config import DEVICES, SWITCH

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
    net = parser.add_argument_group("network and data")
    net.add_argument("--data", required=True, metavar="DIR", help="ImageFolder root with train/ and val/")
    net.add_argument(
        "--arch",
        choices=ARCHS,
        default=DEFAULTS["arch"],
        metavar="ARCH",
        help=f"{', '.join(ARCHS)} (default {DEFAULTS['arch']})",
    )
    net.add_argument(
        "--shortcut", choices=SHORTCUT_OPTIONS, help="ResNets: default A for 18/34 (Table 2), B for 50+"
    )
    net.add_argument(
        "--seed",
        type=int,
        default=DEFAULTS["seed"],
        help=f"weights, data order, augmentation (default {DEFAULTS['seed']})",
    )
    recipe = parser.add_argument_group("recipe (defaults: the paper's)")
    recipe.add_argument(
        "--schedule", choices=SCHEDULES, default=DEFAULTS["schedule"], help=f"default {DEFAULTS['schedule']}"
    )
    recipe.add_argument(
        "--epochs",
        type=positive_int,
        help=f"default {PLATEAU_EPOCHS} (plateau) or {MILESTONE_EPOCHS} (milestones)",
    )
    recipe.add_argument(
        "--milestones",
        type=increasing_epochs,
        default=MILESTONES,
        metavar="E1,E2",
        help=f"milestones schedule: epochs where lr / 10 (default {','.join(map(str, MILESTONES))})",
    )
    recipe.add_argument(
        "--patience",
        type=positive_int,
        default=PLATEAU_PATIENCE,
        help=f"plateau schedule: epochs without a 0.1-point gain before lr / 10 (default {PLATEAU_PATIENCE})",
    )
    batch, crop, test_size = DEFAULTS["batch_size"], DEFAULTS["crop_size"], DEFAULTS["test_size"]
    recipe.add_argument(
        "--batch-size", type=positive_int, default=batch, help=f"over all processes (default {batch})"
    )
    recipe.add_argument(
        "--crop-size", type=positive_int, default=crop, help=f"network input (default {crop})"
    )
    scale = (DEFAULTS["scale_min"], DEFAULTS["scale_max"])
    recipe.add_argument(
        "--scale",
        type=positive_int,
        nargs=2,
        default=scale,
        metavar=("MIN", "MAX"),
        help=f"training: shorter side in [MIN, MAX] (default {scale[0]} {scale[1]})",
    )
    recipe.add_argument(
        "--test-size",
        type=positive_int,
        default=test_size,
        help=f"testing: shorter side (default {test_size})",
    )
    recipe.add_argument(
        "--mean-samples",
        type=positive_int,
        default=DEFAULTS["mean_samples"],
        help=f"images averaged for the mean (default {DEFAULTS['mean_samples']})",
    )
    recipe.add_argument("--no-ten-crop", action="store_true", help="skip the final 10-crop test")
    run = parser.add_argument_group("running (none changes the result)")
    run.add_argument("--device", choices=DEVICES, default=DEFAULTS["device"], help="auto = CUDA if any")
    run.add_argument(
        "--workers",
        type=worker_count,
        default=DEFAULTS["workers"],
        help=f"data-loading processes per GPU process (default {DEFAULTS['workers']})",
    )
    run.add_argument("--amp", choices=SWITCH, default=DEFAULTS["amp"], help="bf16 autocast (auto: on CUDA)")
    run.add_argument(
        "--channels-last",
        choices=SWITCH,
        default=DEFAULTS["channels_last"],
        help="NHWC layout (auto: on CUDA)",
    )
    run.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=DEFAULTS["checkpoint_minutes"],
        help=f"minutes between checkpoints (default {DEFAULTS['checkpoint_minutes']:g})",
    )
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
    return ImageNetConfig(
        data=args.data,
        arch=args.arch,
        shortcut=args.shortcut,
        schedule=args.schedule,
        epochs=args.epochs,
        milestones=tuple(args.milestones),
        patience=args.patience,
        batch_size=args.batch_size,
        seed=args.seed,
        crop_size=args.crop_size,
        scale_min=args.scale[0],
        scale_max=args.scale[1],
        test_size=args.test_size,
        mean_samples=args.mean_samples,
        ten_crop=not args.no_ten_crop,
        device=args.device,
        workers=args.workers,
        amp=args.amp,
        channels_last=args.channels_last,
        checkpoint_minutes=args.checkpoint_minutes,
    )


def run_imagenet(args: argparse.Namespace) -> int:
    """Train as the parsed arguments say (in every process torchrun started); print a summary on rank 0."""
    import os

    from resnet_repro.imagenet.train import train_imagenet
    from resnet_repro.runs.folders import is_finished, read_run_record

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
