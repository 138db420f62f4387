"""The ImageNet path (Tables 2 and 3): the paper's recipe on PyTorch DDP, launched with torchrun.

`train_imagenet(ImageNetConfig(data=...))` in Python; `python -m resnet_repro imagenet --data DIR` or
`torchrun --nproc-per-node 8 -m resnet_repro imagenet --data DIR` on the command line. Results land in
the same run-folder format as the CIFAR-10 runs, so `resnet_repro.runs.loaders.load_runs` reads them too.
"""

from resnet_repro.imagenet.config import ImageNetConfig
from resnet_repro.imagenet.data import Geometry, check_image_folder
from resnet_repro.imagenet.train import run_folder, train_imagenet

__all__ = [
    "Geometry",
    "ImageNetConfig",
    "check_image_folder",
    "run_folder",
    "train_imagenet",
]
