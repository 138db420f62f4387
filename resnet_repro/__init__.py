"""resnet_repro: an executable reproduction of He et al. (2015), Deep Residual Learning."""

__version__ = "0.1.0"
