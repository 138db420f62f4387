"""resnet_repro: an executable reproduction of He et al. (2015), Deep Residual Learning.

The names a user imports, as ``torchvision.models`` gives them: the paper's nets, their counts, a run, a
sweep, and the loaders of run folders. Each is imported on first use so that ``import resnet_repro`` stays
fast; the layers they come from are the subpackages (ARCHITECTURE.md).
"""

__version__ = "0.1.0"

_LAZY = {
    **dict.fromkeys(
        ["build_cifar", "cifar_plain", "cifar_resnet", "imagenet_plain", "imagenet_resnet", "vgg"], "models"
    ),
    **dict.fromkeys(["count_macs", "count_params"], "paper.counting"),
    "RunConfig": "runs.config",
    "train": "cifar.trainer",
    **dict.fromkeys(["reproduce", "EXPERIMENTS"], "sweeps.experiments"),
    **dict.fromkeys(
        ["load_runs", "load_histories", "load_layer_std", "load_grad_norms", "load_landscapes"],
        "runs.loaders",
    ),
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
