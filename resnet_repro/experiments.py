"""The paper's CIFAR-10 experiments as named sets of runs, and `reproduce` to train what is missing.

Runs are shared: every experiment's run of, say, ResNet-56-A at the quick budget with seed 0 is the one
folder <results_dir>/quick/resnet56-A-seed0/ (see `results.py`), so Figure 6, Table 6, the shortcut
comparison and Figure 7 never train it twice.
"""

from __future__ import annotations

import os
from pathlib import Path

from .config import PLAIN_SHORTCUT, RunConfig
from .results import is_finished, run_folder

_PLAIN_DEPTHS = (20, 32, 44, 56)
_RESNET_DEPTHS = (20, 32, 44, 56, 110)

# name -> the (arch, shortcut) specs it needs; "-" = a plain net.
EXPERIMENTS: dict[str, list[tuple[str, str]]] = {
    "fig1": [("plain20", PLAIN_SHORTCUT), ("plain56", PLAIN_SHORTCUT)],
    "fig6": [(f"plain{d}", PLAIN_SHORTCUT) for d in _PLAIN_DEPTHS]
    + [(f"resnet{d}", "A") for d in _RESNET_DEPTHS],
    "table6": [(f"resnet{d}", "A") for d in _RESNET_DEPTHS],
    "shortcuts": [(f"resnet{d}", option) for d in (20, 56) for option in ("A", "B", "C")],
    "fig7": [("plain20", PLAIN_SHORTCUT), ("plain56", PLAIN_SHORTCUT)]
    + [(f"resnet{d}", "A") for d in (20, 56, 110)],
}
DESCRIPTIONS = {
    "fig1": "plain-20 and plain-56: the degradation problem",
    "fig6": "plain-20/32/44/56 and ResNet-20/32/44/56/110 curves (+ ResNet-1202 with --include-1202)",
    "table6": "ResNet-20/32/44/56/110 test errors (+ ResNet-1202 with --include-1202)",
    "shortcuts": "ResNet-20 and ResNet-56 with shortcut options A, B and C",
    "fig7": "layer responses of plain-20/56 and ResNet-20/56/110 (reuses finished runs)",
}
WITH_1202 = ("fig6", "table6")  # ResNet-1202 (19.4M parameters, ~10x ResNet-110's time) only when asked


def experiment_specs(experiment: str, include_1202: bool = False) -> list[tuple[str, str]]:
    """The (arch, shortcut) specs of `experiment`."""
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}: allowed are {', '.join(EXPERIMENTS)}")
    specs = list(EXPERIMENTS[experiment])
    if include_1202 and experiment in WITH_1202:
        specs.append(("resnet1202", "A"))
    return specs


def experiment_configs(
    experiment: str, budget: str = "quick", seeds: int = 1, include_1202: bool = False, **overrides
) -> list[RunConfig]:
    """One RunConfig per spec and seed (seeds 0..seeds-1). overrides: any other RunConfig field."""
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer (runs use seeds 0..K-1), got {seeds!r}")
    for key in ("arch", "shortcut", "seed", "budget"):
        if key in overrides:
            raise ValueError(f"{key} is set by the experiment; it cannot be overridden")
    return [
        RunConfig.from_dict({"arch": arch, "shortcut": shortcut, "budget": budget, "seed": seed, **overrides})
        for arch, shortcut in experiment_specs(experiment, include_1202)
        for seed in range(seeds)
    ]


def reproduce(
    experiment: str,
    budget: str = "quick",
    data: str | os.PathLike | None = None,
    results_dir: str | os.PathLike | None = None,
    device: str = "auto",
    seeds: int = 1,
    include_1202: bool = False,
    progress: bool = True,
    force: bool = False,
    **overrides,
) -> list[Path]:
    """Train every run of `experiment` that is not finished yet; return all its run folders, in order.

    Finished runs are skipped (without even loading the data); the data is loaded once for the rest.
    overrides: other RunConfig fields (iterations, eval_points, val_split, speed options, ...).
    """
    from .data import load_cifar10  # lazy: listing an experiment's folders needs no torch data code
    from .trainer import train

    configs = experiment_configs(
        experiment, budget, seeds, include_1202, data=data, device=device, **overrides
    )
    folders, loaded = [], None
    for number, config in enumerate(configs, start=1):
        folder = run_folder(config, results_dir)
        if not is_finished(folder) or force:
            if loaded is None:
                loaded = load_cifar10(config.data, progress=progress)
            if progress:
                print(f"[{number}/{len(configs)}] {experiment}: {folder}")
        folders.append(train(config, results_dir, progress=progress, force=force, data=loaded))
    return folders


def experiment_folders(
    experiment: str,
    budget: str = "quick",
    results_dir: str | os.PathLike | None = None,
    seeds: int = 1,
    include_1202: bool = False,
    **overrides,
) -> list[Path]:
    """Where `experiment`'s runs live (finished or not): for the book to pick its runs from results."""
    configs = experiment_configs(experiment, budget, seeds, include_1202, **overrides)
    return [run_folder(config, results_dir) for config in configs]
