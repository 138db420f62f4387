"""The lesion study: delete one block at a time from a trained network and measure its test error.

Veit, Wilber and Belongie (2016, "Residual networks behave like ensembles of relatively shallow
networks") deleted single blocks from a trained ResNet at test time. Here, for a CIFAR-10 run's stored
weights (`weights.pt`):

- ResNet: a block loses its residual branch and keeps its shortcut, y = ReLU(shortcut(x)): the block
  with F(x) = 0. Every block can be removed, the shape-changing ones too (option A's shortcut subsamples
  and zero-pads; B's and C's project).
- plain net: its pair of 3x3 layers is replaced by the identity, y = x, which is only possible where the
  block keeps the shape of its input (not in the first block of stages 2 and 3, which halve the map and
  double the filters); those blocks are not offered.

`python -m resnet_repro analyze lesion RUN_FOLDER...` writes `lesion.csv` into each run folder: one row
for the intact net (block 0) and one per removable block, with the test error and each class's error.
It is a cache: the book reads it and never recomputes it. Each lesion reuses the intact net's activations
up to the removed block, so a network of N blocks costs about N/2 + 1 passes over the test set, not N+1.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from resnet_repro.cifar.augment import mean_image, normalize
from resnet_repro.cifar.data import CifarData
from resnet_repro.cifar.evaluation import EVAL_BATCH, autocast
from resnet_repro.models import BasicBlock, Bottleneck
from resnet_repro.runs.files import write_csv
from resnet_repro.runs.folders import RUN_KEYS, WEIGHTS_FILE, is_finished
from resnet_repro.runs.lock import run_lock
from resnet_repro.runs.weights import weights_sha256

LESION_FILE = "lesion.csv"
# block: 0 for the intact net, else the removed block's position in network order (1-based).
# removed: what replaced the block ("nothing", "shortcut only" or "identity").
LESION_COLUMNS = [
    "block",
    "name",
    "stage",
    "changes_shape",
    "removed",
    "test_error",
    "seconds",
    "device",
    "amp",
    "weights_sha256",
]
CLASS_PREFIX = "error_"  # then one column per class: error_airplane, ... (% of that class's test images)
INTACT, SHORTCUT_ONLY, IDENTITY = "nothing", "shortcut only", "identity"
BLOCK_TYPES = (BasicBlock, Bottleneck)


# ---------------------------------------------------------------------------------------------------------
# Which blocks can be removed, and removing one
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """One block of a network and whether (and how) a lesion can remove it."""

    block: int  # position in network order, 1-based
    name: str  # module name, e.g. "stage2.0"
    stage: int  # 1-based
    changes_shape: bool  # its output has another shape than its input (stride 2, more filters)
    residual: bool  # it has a shortcut

    @property
    def removable(self) -> bool:
        """A residual block always falls back to its shortcut; a plain one only to an identity that fits."""
        return self.residual or not self.changes_shape

    @property
    def removed(self) -> str:
        return SHORTCUT_ONLY if self.residual else IDENTITY


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The network's blocks (pairs of 3x3 layers, or bottlenecks) in forward order, with their names."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, BLOCK_TYPES)]


def changes_shape(block: nn.Module, size: int = 8) -> bool:
    """Whether the block's output differs in shape from its input (run on a copy on the meta device)."""
    channels = block.conv1.in_channels
    with torch.no_grad():
        shapes_only = copy.deepcopy(block).to("meta")
        x = torch.empty(1, channels, size, size, device="meta")
        return tuple(shapes_only(x).shape) != tuple(x.shape)


def sites(model: nn.Module) -> list[Site]:
    """Every block of the network, removable or not, in forward order."""
    found = []
    for position, (name, block) in enumerate(blocks(model), start=1):
        stage = int(name.split(".")[0].removeprefix("stage")) if name.startswith("stage") else 0
        residual = getattr(block, "shortcut", None) is not None
        found.append(Site(position, name, stage, changes_shape(block), residual))
    return found


def removable_sites(model: nn.Module) -> list[Site]:
    """The blocks a lesion may remove: every ResNet block; the plain blocks whose shape allows identity."""
    return [site for site in sites(model) if site.removable]


class Removed(nn.Module):
    """What is left of a block after the lesion: its shortcut and the ReLU after the addition (ResNet),
    or nothing at all (plain: the identity)."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.shortcut = getattr(block, "shortcut", None)
        children = dict(block.named_children())
        names = list(children)
        # the modules after the addition (the block's last ReLU), in order
        after = names[names.index("shortcut") + 1 :] if "shortcut" in names else []
        self.after = copy.deepcopy(nn.Sequential(*(children[name] for name in after)))
        for module in self.after.modules():  # an identity shortcut returns x itself: never write into it
            if isinstance(module, nn.ReLU):
                module.inplace = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is None:
            return x
        return self.after(self.shortcut(x))  # the block with its residual function set to zero


@contextlib.contextmanager
def without_block(model: nn.Module, name: str | None) -> Iterator[nn.Module]:
    """The model with block `name` removed (None: nothing removed), put back on leaving."""
    if name is None:
        yield model
        return
    site = {site.name: site for site in sites(model)}.get(name)
    if site is None:
        raise ValueError(f"no block named {name!r}: the blocks are {', '.join(n for n, _ in blocks(model))}")
    if not site.removable:
        raise ValueError(
            f"block {name} of a plain net changes the shape of its input: no identity can replace it"
        )
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name)
    block = getattr(parent, child)
    setattr(parent, child, Removed(block))
    try:
        yield model
    finally:
        setattr(parent, child, block)


# ---------------------------------------------------------------------------------------------------------
# Evaluating every lesion, sharing the intact net's activations up to the removed block
# ---------------------------------------------------------------------------------------------------------


def _stem(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.relu1(model.bn1(model.conv1(x)))


def _head(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.fc(model.pool(x).flatten(1))


@torch.inference_mode()
def lesion_predictions(
    model: nn.Module,
    images: torch.Tensor,
    names: list[str | None],
    device: torch.device,
    amp: bool,
    progress: bool = False,
) -> tuple[dict[str | None, torch.Tensor], dict[str | None, float]]:
    """The predicted classes of `images` with each block of `names` removed (None: the intact net), and
    the seconds each took (the intact net's: all the rest, so they add up to the whole).

    A CIFAR-10 net is stem -> blocks -> head (CifarNet.forward, checked on the first batch); the blocks
    before the removed one see exactly what they see in the intact net, so their outputs are computed once.
    """
    model.eval()
    chain = blocks(model)
    allowed = [site.name for site in removable_sites(model)]
    refused = [name for name in names if name is not None and name not in allowed]
    if refused:
        raise ValueError(
            f"cannot remove {', '.join(map(repr, refused))}: removable blocks are {', '.join(allowed)}"
        )
    removed = {name: Removed(block) for name, block in chain if name in names}
    predictions: dict[str | None, list[torch.Tensor]] = {name: [] for name in [None, *names]}
    seconds = dict.fromkeys(predictions, 0.0)
    starts = range(0, len(images), EVAL_BATCH)
    for start in tqdm(starts, desc="lesions", unit="batch", disable=not progress):
        batch_started, in_lesions = time.perf_counter(), 0.0
        batch = images[start : start + EVAL_BATCH].to(device, non_blocking=True)
        with autocast(device, amp):
            x = _stem(model, batch)
            for i, (name, block) in enumerate(chain):
                if name in removed:  # the lesion: from the intact input of this block on, without it
                    started = time.perf_counter()
                    y = removed[name](x)
                    for _, later in chain[i + 1 :]:
                        y = later(y)
                    predictions[name].append(_head(model, y).argmax(dim=1).cpu())
                    seconds[name] += time.perf_counter() - started
                    in_lesions += time.perf_counter() - started
                x = block(x)
            logits = _head(model, x)
            if start == 0 and not torch.equal(logits, model(batch)):  # the decomposition is the forward
                raise RuntimeError("lesion: stem -> blocks -> head does not reproduce the model's forward")
            predictions[None].append(logits.argmax(dim=1).cpu())
        seconds[None] += time.perf_counter() - batch_started - in_lesions  # the intact net: the rest
    return {name: torch.cat(predictions[name]) for name in names}, {name: seconds[name] for name in names}


def class_errors(predicted: torch.Tensor, labels: torch.Tensor, n_classes: int) -> tuple[float, list[float]]:
    """Test error (%) and each class's error (% of that class's images)."""
    wrong = predicted != labels
    per_class = torch.bincount(labels[wrong], minlength=n_classes).double()
    counts = torch.bincount(labels, minlength=n_classes).double().clamp(min=1)
    return 100.0 * wrong.double().mean().item(), (100.0 * per_class / counts).tolist()


def lesion_table(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    classes: list[str],
    device: torch.device,
    amp: bool,
    progress: bool = False,
) -> pd.DataFrame:
    """One row for the intact net (block 0) and one per removable block: test and per-class errors."""
    found = removable_sites(model)
    names = [None] + [site.name for site in found]
    predicted, seconds = lesion_predictions(model, images, names, device, amp, progress)
    intact = Site(0, "", 0, False, False)
    rows = []
    labels = labels.cpu()
    for site, name in zip([intact, *found], names, strict=True):
        error, per_class = class_errors(predicted[name], labels, len(classes))
        rows.append(
            {
                "block": site.block,
                "name": site.name,
                "stage": site.stage,
                "changes_shape": site.changes_shape,
                "removed": INTACT if name is None else site.removed,
                "test_error": round(error, 4),
                "seconds": round(seconds[name], 3),
                **{f"{CLASS_PREFIX}{c}": round(e, 4) for c, e in zip(classes, per_class, strict=True)},
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# A run folder: its weights, its test set, and the cached lesion.csv
# ---------------------------------------------------------------------------------------------------------


def is_cached(folder: Path) -> bool:
    """lesion.csv exists and was computed from the weights now in the folder."""
    path = Path(folder) / LESION_FILE
    if not path.is_file() or not (Path(folder) / WEIGHTS_FILE).is_file():
        return False
    stored = pd.read_csv(path, usecols=["weights_sha256"], dtype=str).weights_sha256
    return not stored.empty and (stored == weights_sha256(folder)).all()


def run_test_images(folder: Path, data: str | CifarData | None = None, progress: bool = False):
    """The run's own test images, normalized as in training (its training set's per-pixel mean), with
    their labels and class names (data: as trainer.finished_run_data takes it)."""
    from resnet_repro.cifar.trainer import finished_run_data

    loaded = finished_run_data(folder, data, progress)
    mean = mean_image(loaded.train_images)  # as TrainingLoop: the per-pixel mean of the training images
    return normalize(loaded.test_images, mean), loaded.test_labels, list(loaded.classes)


def analyze_run(
    folder: str | Path,
    data: str | CifarData | None = None,
    device: str = "auto",
    amp: str = "auto",
    force: bool = False,
    progress: bool = False,
) -> tuple[Path, bool]:
    """Write <folder>/lesion.csv unless it is cached for the current weights; (its path, whether computed).

    device: "auto" (CUDA if available), "cpu" or "cuda". amp: "auto" (bf16 on CUDA and on CPUs that
    multiply bf16 in hardware), "on" or "off".
    """
    from resnet_repro.runs.runtime import analysis_amp, device_name, resolve_device
    from resnet_repro.runs.weights import load_trained_model

    folder = Path(folder)
    if not is_finished(folder):
        raise ValueError(f"{folder}: not a finished run folder (no run.json)")
    path = folder / LESION_FILE
    if not force and is_cached(folder):
        return path, False
    torch_device = resolve_device(device)
    use_amp = analysis_amp(amp, torch_device)
    with run_lock(folder):  # one writer per run folder: no `train --force` replaces the weights meanwhile
        weights = weights_sha256(folder)
        model = load_trained_model(folder, torch_device).to(memory_format=torch.channels_last)
        images, labels, classes = run_test_images(folder, data, progress)
        images = images.contiguous(memory_format=torch.channels_last)
        table = lesion_table(model, images, labels, classes, torch_device, use_amp, progress)
        table["device"] = device_name(torch_device)
        table["amp"] = "bf16" if use_amp else "fp32"
        table["weights_sha256"] = weights
        columns = LESION_COLUMNS + [c for c in table.columns if c.startswith(CLASS_PREFIX)]
        write_csv(path, columns, table.to_dict("records"))
    return path, True


def summary_line(folder: Path) -> str:
    """One line for the command: intact error, the worst lesion, and how long it took."""
    table = pd.read_csv(Path(folder) / LESION_FILE)
    intact = table[table.block == 0].iloc[0]
    lesions = table[table.block > 0]
    worst = lesions.loc[lesions.test_error.idxmax()] if not lesions.empty else None
    took = table.seconds.sum()
    text = f"{Path(folder).name}: intact {intact.test_error:.2f}%"
    if worst is not None:
        text += (
            f", {len(lesions)} lesions: median {lesions.test_error.median():.2f}%, "
            f"worst {worst.test_error:.2f}% without {worst['name']}"
        )
    return text + f" ({took / 60:.1f} min, {intact.device}, {intact.amp}) -> {Path(folder) / LESION_FILE}"


# ---------------------------------------------------------------------------------------------------------
# Reading for the book
# ---------------------------------------------------------------------------------------------------------


def load_lesions(results_dir=None) -> pd.DataFrame:
    """Every lesion.csv under results_dir, with the run keys (results.RUN_KEYS) in front; runs without one
    are left out. Class columns: error_<class> (%)."""
    from resnet_repro.runs.loaders import load_runs

    runs = load_runs(results_dir)
    frames = []
    for run in runs.itertuples(index=False):
        path = Path(run.path) / LESION_FILE
        if path.is_file():
            table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"name": str})
            table["name"] = table["name"].fillna("")
            frames.append(table.assign(**{key: getattr(run, key) for key in RUN_KEYS}))
    if not frames:
        return pd.DataFrame(columns=RUN_KEYS + LESION_COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    return table[RUN_KEYS + [c for c in table.columns if c not in RUN_KEYS]]


def class_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c.startswith(CLASS_PREFIX)]
