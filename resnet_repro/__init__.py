"""resnet_repro: an executable reproduction of He et al. (2015), Deep Residual Learning."""

__version__ = "0.1.0"

# The main entry points, imported on first use so that `import resnet_repro` stays fast.
_LAZY = {
    "RunConfig": "config",
    "train": "trainer",
    "reproduce": "experiments",
    "EXPERIMENTS": "experiments",
    "load_runs": "results",
    "load_histories": "results",
    "load_layer_std": "results",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
