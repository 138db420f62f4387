"""Counted parameters and multiply-adds of the paper's nets by their paper names ("VGG-19", "ResNet-34 B",
"ResNet-56"), with the paper's own numbers beside them where it states them.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass

import pandas as pd

from resnet_repro import models
from resnet_repro.models.imagenet import PLAIN_DEPTHS, TABLE1, VGG_DEPTHS
from resnet_repro.paper import counting
from resnet_repro.paper.reference import paper_table
from resnet_repro.runs.config import PLAIN_SHORTCUT as PLAIN

NAME_PATTERN = re.compile(r"^(VGG|plain|ResNet)-(\d+)(?: ([ABC]))?$")


IMAGENET_DEPTHS = {"plain": PLAIN_DEPTHS, "ResNet": tuple(TABLE1), "VGG": tuple(VGG_DEPTHS)}


# The option each builder uses when none is named (read from the code, so it cannot drift).
CIFAR_DEFAULT = inspect.signature(models.cifar_resnet).parameters["shortcut"].default


IMAGENET_DEFAULT = inspect.signature(models.imagenet_resnet).parameters["shortcut"].default


def cifar_macs(arch: str) -> int:
    """Multiply-adds of one forward pass of a CIFAR-10 net ("resnet56", "plain20"), counted on the meta
    device: what the analyses of stored weights scale their time estimates by."""
    import torch

    with torch.device("meta"):
        return counting.count_macs(models.build_cifar(arch))


def cost_row(name: str) -> counting.CostRow:
    """A paper-style name ("VGG-19", "plain-34", "ResNet-34 A", "ResNet-56") as a row to count."""
    match = NAME_PATTERN.match(name)
    if match is None:
        raise ValueError(
            f"unknown net {name!r}: expected e.g. 'VGG-19', 'plain-34', 'ResNet-34 A', 'ResNet-56'"
        )
    kind, depth, option = match.group(1), int(match.group(2)), match.group(3)
    imagenet = depth in IMAGENET_DEPTHS[kind]
    if kind == "VGG":
        return counting.CostRow(name, depth, None, lambda: models.vgg(depth), counting.IMAGENET_INPUT)
    if kind == "plain":
        build = (lambda: models.imagenet_plain(depth)) if imagenet else (lambda: models.cifar_plain(depth))
        return counting.CostRow(
            name, depth, None, build, counting.IMAGENET_INPUT if imagenet else counting.CIFAR_INPUT
        )
    if imagenet:
        option = option or IMAGENET_DEFAULT
        return counting.CostRow(
            name, depth, option, lambda: models.imagenet_resnet(depth, option), counting.IMAGENET_INPUT
        )
    option = option or CIFAR_DEFAULT
    return counting.CostRow(
        name, depth, option, lambda: models.cifar_resnet(depth, option), counting.CIFAR_INPUT
    )


def _with_paper(costs: pd.DataFrame) -> pd.DataFrame:
    """Add the paper's macs and params where it states them, matched by family, depth and shortcut."""
    paper = paper_table()
    paper = paper[paper.metric.isin(["macs", "params"])].copy()
    paper["shortcut"] = paper.shortcut.replace("", PLAIN)
    wide = paper.pivot_table(index=["family", "depth", "shortcut"], columns="metric", values="value")
    family = costs.name.str.extract(NAME_PATTERN)[0].str.lower()  # "ResNet" -> the table's "resnet"
    keys = list(zip(family, costs.depth, costs.shortcut, strict=True))
    costs = costs.copy()
    for metric in ("macs", "params"):
        column = wide[metric] if metric in wide else pd.Series(dtype=float)
        costs[f"paper_{metric}"] = [column.get(k, math.nan) for k in keys]
    return costs


def costs_of(names) -> pd.DataFrame:
    """Counted params and MACs of the named nets, with the paper's numbers where it gives them."""
    return _with_paper(counting.cost_table(cost_row(n) for n in names))


FIGURE3_NETS = ("VGG-19", "plain-34", "ResNet-34 A", "ResNet-34 B")  # A: parameter-free shortcuts


TABLE1_NETS = ("ResNet-18", "ResNet-34 B", "ResNet-50", "ResNet-101", "ResNet-152")  # B: Table 3's default


CIFAR_NETS = tuple(f"{kind}-{d}" for d in (20, 32, 44, 56, 110) for kind in ("plain", "ResNet"))


def imagenet_costs() -> pd.DataFrame:
    """VGG-16/19, plain-18/34 and the Table 1 ResNets (34 with each shortcut option) at 224x224."""
    names = ("VGG-16", "VGG-19", "plain-18", "plain-34", "ResNet-18", "ResNet-34 A", "ResNet-34 B")
    return costs_of(names + ("ResNet-34 C", "ResNet-50", "ResNet-101", "ResNet-152"))


def cifar_costs(names=CIFAR_NETS) -> pd.DataFrame:
    """The CIFAR-10 nets at 32x32 (ResNets with option A, as the paper's Table 6)."""
    return costs_of(names)


@dataclass(frozen=True)
class CostRatios:
    """VGG-19 against ResNet-34: how many times more parameters and multiply-adds."""

    params_ratio: float
    macs_ratio: float

    @property
    def macs_fraction(self) -> float:
        return 1 / self.macs_ratio


def vgg_resnet_ratios(costs: pd.DataFrame, big: str = "VGG-19", small: str = "ResNet-34 B") -> CostRatios:
    table = costs.set_index("name")
    return CostRatios(
        params_ratio=table.params[big] / table.params[small], macs_ratio=table.macs[big] / table.macs[small]
    )


def shortcut_param_table(names=("ResNet-20", "ResNet-56", "ResNet-34")) -> pd.DataFrame:
    """Parameters of each shortcut option, counted, and what B and C add over A (which adds none)."""
    rows = []
    for name in names:
        plain = costs_of([name.replace("ResNet", "plain")]).params.iloc[0]  # the same net without shortcuts
        for option in models.SHORTCUT_OPTIONS:
            params = costs_of([f"{name} {option}"]).params.iloc[0]
            rows.append({"net": f"{name} {option}", "params": params, "added_over_plain": params - plain})
    return pd.DataFrame(rows)
