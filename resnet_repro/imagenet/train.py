"""Train one ImageNet network with the paper's recipe (section 3.4), on one process or many.

The recipe: batch 256 over all processes, SGD with momentum 0.9 and weight decay 1e-4, lr 0.1 divided
by 10 when the validation error plateaus (or at fixed epochs), the augmentation of `cifar/data.py`; the
validation error of the center crop after every epoch, and at the end also the paper's 10-crop test.

Many processes: `torchrun` starts one per GPU; DistributedDataParallel averages the gradients, each
process draws its own share of every mini-batch (`EpochSampler`), batch norm normalises over each
process's share (as in the paper, where each GPU normalised its own). Rank 0 writes every file.

Never lose work: a checkpoint at every epoch's end, every `checkpoint_minutes` within an epoch, and on
Ctrl-C or SIGTERM (a scheduler's time limit); rerunning the same command resumes, on any number of
processes, and a resumed run on the CPU is bit-for-bit the uninterrupted one.
"""

from __future__ import annotations

import hashlib
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from resnet_repro.imagenet.config import ImageNetConfig
from resnet_repro.imagenet.data import (
    PCA_STD,
    TEN_CROPS,
    EpochSampler,
    ImageSamples,
    SeededImages,
    average_crop_scores,
    center_crop_transform,
    check_image_folder,
    fingerprint,
    list_images,
    shard_indices,
    ten_crop_transform,
    train_transform,
)
from resnet_repro.imagenet.distributed import Processes, start_processes
from resnet_repro.models import imagenet_plain, imagenet_resnet
from resnet_repro.paper.counting import count_macs, count_params
from resnet_repro.paper.recipe import BASE_LR, LR_DIVISOR, MOMENTUM, WEIGHT_DECAY, Schedule, learning_rate
from resnet_repro.runs.files import atomic_write, read_run_record, write_csv, write_json
from resnet_repro.runs.folders import (
    CHECKPOINT_FILE,
    DEFAULT_RESULTS_DIR,
    HISTORY_FILE,
    RUN_FILE,
    is_finished,
)
from resnet_repro.runs.runtime import (
    Clock,
    GracefulInterrupt,
    Tally,
    check_same_run,
    cudnn_benchmark,
    device_name,
    load_checkpoint,
    run_provenance,
    run_record,
    save_checkpoint,
)

HISTORY_COLUMNS = ["iteration", "epoch", "lr", "train_loss", "train_error", "test_error", "test_top5_error"]
MODEL_FILE = "model.pt"  # the trained weights and the mean image: days of GPU time, so they are kept
PLATEAU_THRESHOLD = 0.1  # percentage points of validation error that count as an improvement
SYNC_EVERY = 50  # steps between the processes' agreement on "checkpoint now" / "stop now"
MEAN_SEED = 0  # which training images the mean is averaged over: the same for every run
CHECKPOINT_FORMAT = 1


# ---------------------------------------------------------------------------------------------------------
# The network and the data of a run
# ---------------------------------------------------------------------------------------------------------


def build_network(config: ImageNetConfig, num_classes: int = 1000) -> nn.Module:
    model = (
        imagenet_plain(config.depth)
        if config.family == "plain"
        else imagenet_resnet(config.depth, config.shortcut)
    )
    if num_classes != model.fc.out_features:
        # A subset of ImageNet's classes: a head of that size, initialised as the model's own (torch default).
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


@dataclass
class ImageNetData:
    root: Path
    classes: list[str]
    train: list[tuple[str, int]]  # (path, class index), ImageFolder's order
    val: list[tuple[str, int]]
    identity: dict  # name, source, fingerprint: what the results say they were trained on


def load_image_folder(root, procs: Processes) -> ImageNetData:
    """List both splits (every process; a DataError for a malformed tree) and fingerprint them (rank 0)."""
    root = Path(root)
    classes = check_image_folder(root)
    train, val = list_images(root, "train"), list_images(root, "val")
    sha = procs.share(fingerprint(root, train + val) if procs.main else None)
    identity = {
        "name": root.resolve().name,
        "kind": "imagenet-folder",
        "source": str(root.resolve()),
        "sha256": sha,
        "sha256_of": "relative path, class and byte size of every image",
        "classes": len(classes),
        "train_images": len(train),
        "val_images": len(val),
    }
    return ImageNetData(root, classes, train, val, identity)


def compute_mean(data: ImageNetData, config: ImageNetConfig, procs: Processes) -> torch.Tensor:
    """The per-pixel mean [3, crop, crop] (0..1 scale) of the center crops of `mean_samples` training images.

    The same crop as the test view; it is subtracted from every training crop too. The images are a
    seeded draw shared by every run, split over the processes, summed in float64.
    """
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(MEAN_SEED))
    chosen = order[: config.mean_samples].tolist()
    mine = [data.train[i] for i in chosen[procs.rank :: procs.world]]
    loader = DataLoader(
        ImageSamples(mine, center_crop_transform(config.geometry(), mean=None)),
        batch_size=64,
        num_workers=config.workers,
    )
    crop = config.crop_size
    total = torch.zeros(4, crop, crop, dtype=torch.float64, device=procs.device)  # RGB sums, and a count
    for images, _ in loader:
        total[:3] += images.to(procs.device, torch.float64).sum(dim=0)
        total[3] += len(images)
    procs.sum_(total)
    return (total[:3] / total[3]).float().cpu()


def _eval_loader(samples, transform, config: ImageNetConfig, procs: Processes, batch: int) -> DataLoader:
    shard = [samples[i] for i in shard_indices(len(samples), procs.rank, procs.world)]
    return DataLoader(
        ImageSamples(shard, transform),
        batch_size=batch,
        num_workers=config.workers,
        pin_memory=procs.device.type == "cuda",
    )


# ---------------------------------------------------------------------------------------------------------
# What a checkpoint holds besides the model and optimizer
# ---------------------------------------------------------------------------------------------------------


@dataclass
class RunState:
    epoch: int = 0  # the epoch being trained (0-based)
    step: int = 0  # steps of it already taken
    iteration: int = 0  # steps over the whole run
    history: list[dict] = field(default_factory=list)
    train_time_s: float = 0.0  # training and validation, over all sessions
    wall_time_s: float = 0.0  # the whole call, including listing the data and the mean, over all sessions
    sessions: list[dict] = field(default_factory=list)  # per launch: processes, device


# ---------------------------------------------------------------------------------------------------------
# train_imagenet(): the public entry point
# ---------------------------------------------------------------------------------------------------------


IMAGENET_DATASET = "imagenet"  # the dataset folder of every ImageNet run (ILSVRC-2012 or a subset of it)


def run_folder(config: ImageNetConfig, results_dir=None) -> Path:
    """<results_dir>/imagenet/<"imagenet" or "imagenet-<N>ep">/<run name>/, as the CIFAR-10 runs are laid
    out (<dataset>/<budget label>/<run>)."""
    root = Path(results_dir) if results_dir is not None else DEFAULT_RESULTS_DIR
    return root / IMAGENET_DATASET / config.budget_label() / config.run_name()


def train_imagenet(
    config: ImageNetConfig,
    results_dir=None,
    progress: bool = True,
    force: bool = False,
    stop_after_epochs: int | None = None,
) -> Path:
    """Train `config` into its run folder and return the folder; call it in every process.

    A finished run is returned as it is unless `force`; a checkpointed one resumes (rank 0 wrote the
    checkpoint, every process reads it: the results folder must be shared by the nodes).
    stop_after_epochs: checkpoint and return (unfinished) after this epoch, e.g. to fit a job's time slot.
    """
    procs = start_processes(config.device)
    try:
        return _train(config, procs, results_dir, progress and procs.main, force, stop_after_epochs)
    finally:
        procs.stop()


def _train(config, procs: Processes, results_dir, progress, force, stop_after_epochs) -> Path:
    folder = run_folder(config, results_dir)
    if config.batch_size % procs.world:
        raise ValueError(
            f"batch size {config.batch_size} does not divide over {procs.world} processes; use a process "
            "count that divides it (the paper's 256: 1, 2, 4, 8, 16, ... GPUs)"
        )
    if is_finished(folder) and not force:
        record = read_run_record(folder)
        check_same_run(folder / RUN_FILE, "results", record["identity"], config.result_identity())
        source = record["provenance"]["dataset"]["source"]
        if Path(source) != Path(config.data).resolve():
            raise ValueError(
                f"{folder}: finished run on the images in {source}, not {config.data}; "
                "pass --force to replace it or --out to keep both"
            )
        if progress:
            print(f"{folder}: finished already (--force trains it again)")
        return folder
    if force and procs.main:
        for name in (RUN_FILE, HISTORY_FILE, CHECKPOINT_FILE, MODEL_FILE):
            (folder / name).unlink(missing_ok=True)
    procs.barrier()
    clock = Clock()
    data = load_image_folder(config.data, procs)
    checkpoint = _load_checkpoint(folder / CHECKPOINT_FILE, config, data)
    torch.manual_seed(config.seed)  # the initial weights: the same on every process
    model = build_network(config, len(data.classes))
    state = RunState()
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        state = RunState(**checkpoint["state"])
        mean = checkpoint["mean"]
    else:
        mean = compute_mean(data, config, procs)
    state.sessions.append(
        {
            "processes": procs.world,
            "processes_per_node": procs.local_world,
            "device_name": device_name(procs.device),
        }
    )
    cuda = procs.device.type == "cuda"
    with cudnn_benchmark(cuda):
        run = Run(config, procs, data, model, mean, state)
        if checkpoint is not None:
            run.load_state_dict(checkpoint)
        finished = run.train(folder, clock, progress, stop_after_epochs)
        if finished:
            evaluations = run.final_evaluations()
            replicas = run.replicas()
            clock.book(state)
            if procs.main:
                _write_results(folder, config, data, run, evaluations, replicas)
    procs.barrier()  # nobody leaves (and tears the group down) while rank 0 is still writing
    return folder


class Run:
    """The DDP model, its optimizer and schedule, the data loaders, and the loop over epochs."""

    def __init__(self, config, procs: Processes, data: ImageNetData, model, mean, state: RunState):
        self.config, self.procs, self.data, self.state, self.mean = config, procs, data, state, mean
        cuda = procs.device.type == "cuda"
        self.amp = config.amp == "on" or (config.amp == "auto" and cuda)
        channels_last = config.channels_last == "on" or (config.channels_last == "auto" and cuda)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(procs.device, memory_format=self.memory_format)  # the module itself
        # DDP broadcasts rank 0's weights now (all equal already) and averages gradients in backward.
        self.ddp = (
            DistributedDataParallel(self.model, device_ids=[procs.device.index] if cuda else None)
            if procs.distributed
            else self.model
        )
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=BASE_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
        )
        self.plateau = None
        if config.schedule == "plateau":
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimizer,
                mode="min",
                factor=1 / LR_DIVISOR,
                patience=config.patience,
                threshold=PLATEAU_THRESHOLD,
                threshold_mode="abs",
            )
        self.per_process = config.batch_size // procs.world
        self.sampler = EpochSampler(len(data.train), procs.rank, procs.world, config.seed)
        self.steps_per_epoch = len(self.sampler.shard) // self.per_process
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"{len(data.train)} training images are fewer than one batch of {config.batch_size}"
            )
        geometry = config.geometry()
        self.train_loader = DataLoader(
            SeededImages(data.train, train_transform(geometry, mean), config.seed),
            batch_size=self.per_process,
            sampler=self.sampler,
            num_workers=config.workers,
            pin_memory=cuda,
            drop_last=True,  # every step a full batch (the shards are padded to equal length)
            persistent_workers=config.workers > 0,
        )
        self.val_loader = _eval_loader(
            data.val, center_crop_transform(geometry, mean), config, procs, self.per_process
        )
        self.tally = Tally(procs.device)  # this process's training loss and errors since the epoch began

    # -- the loop ------------------------------------------------------------------------------------------

    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def set_epoch_lr(self) -> None:
        """Fixed milestones: the rate of this epoch (the plateau scheduler sets its own)."""
        if self.plateau is None:
            # learning_rate() counts steps of a schedule; here a step is an epoch.
            schedule = Schedule(
                self.config.epochs, self.config.milestones, base_lr=BASE_LR, divisor=LR_DIVISOR
            )
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate(self.state.epoch, schedule)

    def train(self, folder: Path, clock: Clock, progress: bool, stop_after_epochs: int | None) -> bool:
        """Train to the end (True), or to `stop_after_epochs` / a stop request, checkpointed (False)."""
        state, procs = self.state, self.procs
        checkpoint_path = folder / CHECKPOINT_FILE
        last_save = time.monotonic()

        def save() -> None:
            nonlocal last_save
            clock.book(state)
            payload = self.state_dict()  # collective: every process takes part
            if procs.main:
                save_checkpoint(checkpoint_path, payload)
            last_save = time.monotonic()

        clock.start_loop()
        with GracefulInterrupt() as stop:  # Ctrl-C, and SIGTERM: what torchrun and schedulers send
            while state.epoch < self.config.epochs:
                self.set_epoch_lr()
                self.sampler.start(state.epoch, skip=state.step * self.per_process)
                bar = tqdm(
                    total=self.steps_per_epoch,
                    initial=state.step,
                    unit="it",
                    disable=not progress,
                    desc=f"{folder.name} epoch {state.epoch + 1}/{self.config.epochs}",
                )
                for images, labels in self.train_loader:
                    self.step(images, labels)
                    bar.update(1)
                    if state.step % SYNC_EVERY == 0 and state.step < self.steps_per_epoch:
                        due = (
                            procs.main and time.monotonic() - last_save > self.config.checkpoint_minutes * 60
                        )
                        save_now, stop_now = self._agree(due, stop.requested)
                        if save_now or stop_now:
                            save()
                        if stop_now:
                            bar.close()
                            self._say(
                                f"Stopped in epoch {state.epoch + 1}; {checkpoint_path} holds the run: "
                                "run the same command again to resume."
                            )
                            raise KeyboardInterrupt
                bar.close()
                self.end_epoch()
                save()
                if progress:
                    print(_epoch_line(state.history[-1], self.config.epochs))
                _, stop_now = self._agree(False, stop.requested)
                if (stop_now or state.epoch == stop_after_epochs) and state.epoch < self.config.epochs:
                    self._say(
                        f"Stopped after epoch {state.epoch}; {checkpoint_path} holds the run: "
                        "run the same command again to resume."
                    )
                    if stop_now:
                        raise KeyboardInterrupt
                    return False
        return True

    def step(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """One SGD step on this process's share of the mini-batch; DDP averages the gradients."""
        images = images.to(self.procs.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        labels = labels.to(self.procs.device, non_blocking=True)
        with torch.autocast(self.procs.device.type, dtype=torch.bfloat16, enabled=self.amp):
            logits = self.ddp(images)
            loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        wrong = (logits.detach().argmax(dim=1) != labels).sum()
        self.tally.add(loss.detach().double() * len(labels), wrong, len(labels))  # no host sync
        self.state.step += 1
        self.state.iteration += 1

    def end_epoch(self) -> None:
        """Training loss/error of the epoch (all processes), validation error, the plateau rule."""
        lr = self.lr()
        train_loss, train_error = self._pop_tally()
        top1, top5 = self.evaluate(self.val_loader, crops=1)
        self.state.history.append(
            {
                "iteration": self.state.iteration,
                "epoch": self.state.epoch + 1,
                "lr": lr,
                "train_loss": train_loss,
                "train_error": train_error,
                "test_error": top1,
                "test_top5_error": top5,
            }
        )
        if self.plateau is not None:
            self.plateau.step(top1)
        self.state.epoch += 1
        self.state.step = 0

    def _agree(self, save: bool, stop: bool) -> tuple[bool, bool]:
        """(save now, stop now), the same on every process: true if any process says so."""
        flags = torch.tensor([save, stop], dtype=torch.int32, device=self.procs.device)
        save_now, stop_now = self.procs.max_(flags).tolist()
        return bool(save_now), bool(stop_now)

    def _tally_totals(self) -> dict:
        """The training sums of all processes together (collective; the tally itself is left as it is)."""
        own = [
            self.tally.loss_sum,
            self.tally.wrong.double(),
            torch.tensor(self.tally.seen).to(self.tally.loss_sum),
        ]
        loss_sum, wrong, seen = self.procs.sum_(
            torch.stack(own)
        ).tolist()  # float64: exact for counts < 2**53
        return {
            "loss_sum": torch.tensor(loss_sum, dtype=torch.float64),
            "wrong": torch.tensor(int(wrong)),
            "seen": int(seen),
        }

    def _pop_tally(self) -> tuple[float, float]:
        """(mean loss, error %) of the epoch's mini-batches over all processes; resets the tally."""
        totals = self._tally_totals()
        self.tally.pop()
        seen = max(totals["seen"], 1)
        return totals["loss_sum"].item() / seen, 100.0 * totals["wrong"].item() / seen

    def _say(self, message: str) -> None:
        if self.procs.main:
            print(f"\n{message}", file=sys.stderr)

    # -- evaluation ----------------------------------------------------------------------------------------

    def sync_buffers(self) -> None:
        """Batch-norm running statistics: rank 0's everywhere (each process updated its own in training;
        DDP overwrites them with rank 0's at every forward, so rank 0's are the run's)."""
        for buffer in self.model.buffers():
            self.procs.broadcast_(buffer)

    @torch.no_grad()
    def evaluate(self, loader: DataLoader, crops: int) -> tuple[float, float]:
        """Top-1 and top-5 error (%) over the whole split (each process its shard, then summed)."""
        self.sync_buffers()
        self.model.eval()
        counts = torch.zeros(3, dtype=torch.float64, device=self.procs.device)  # top-1 wrong, top-5 wrong, n
        for images, labels in loader:
            images = images.to(self.procs.device, non_blocking=True)
            if crops > 1:
                images = images.flatten(0, 1)  # [B, crops, 3, H, W] -> [B * crops, 3, H, W]
            images = images.contiguous(memory_format=self.memory_format)
            labels = labels.to(self.procs.device, non_blocking=True)
            with torch.autocast(self.procs.device.type, dtype=torch.bfloat16, enabled=self.amp):
                scores = self.model(images)
            if crops > 1:
                scores = average_crop_scores(scores, crops)
            top = scores.topk(min(5, scores.shape[1]), dim=1).indices
            hits = top == labels[:, None]
            counts[0] += (~hits[:, 0]).sum()
            counts[1] += (~hits.any(dim=1)).sum()
            counts[2] += len(labels)
        self.model.train()
        top1_wrong, top5_wrong, seen = self.procs.sum_(counts).tolist()
        return 100.0 * top1_wrong / seen, 100.0 * top5_wrong / seen

    def replicas(self) -> dict:
        """Whether every process ends with the very same weights and statistics (DDP's promise), by digest."""
        self.sync_buffers()
        digests = self.procs.gather(weights_digest(self.model.state_dict()))
        identical = len(set(digests)) == 1
        if not identical and self.procs.main:
            warnings.warn(f"the processes' final weights differ: {digests}", stacklevel=2)
        return {"processes": self.procs.world, "weights_sha256": digests[0], "identical": identical}

    def final_evaluations(self) -> dict:
        """Center-crop and (if asked) 10-crop validation errors of the trained network."""
        last = self.state.history[-1]
        results = {"center_crop": {"top1_error": last["test_error"], "top5_error": last["test_top5_error"]}}
        if self.config.ten_crop:
            transform = ten_crop_transform(self.config.geometry(), self.mean)
            batch = max(1, self.per_process // 2)
            loader = _eval_loader(self.data.val, transform, self.config, self.procs, batch)
            top1, top5 = self.evaluate(loader, crops=TEN_CROPS)
            results["ten_crop"] = {"top1_error": top1, "top5_error": top5}
        return results

    # -- checkpoints ---------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything the next step depends on. Collective: the training sums are totalled over processes."""
        return {
            "format": CHECKPOINT_FORMAT,
            "identity": self.config.result_identity(),
            "dataset": self.data.identity["sha256"],
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "plateau": None if self.plateau is None else self.plateau.state_dict(),
            "mean": self.mean,
            "tally": self._tally_totals(),
            "state": asdict(self.state),
        }

    def load_state_dict(self, checkpoint: dict) -> None:
        """The model and run state were loaded before (see _train); here the rest."""
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.plateau is not None:
            self.plateau.load_state_dict(checkpoint["plateau"])
        if self.procs.main:  # the totals so far count once, on rank 0
            self.tally.load_state_dict(checkpoint["tally"])


def weights_digest(state_dict: dict) -> str:
    """sha256 of a state dict's names, dtypes, shapes and bytes (equal digests: bitwise equal weights)."""
    digest = hashlib.sha256()
    for name, tensor in state_dict.items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _load_checkpoint(path: Path, config: ImageNetConfig, data: ImageNetData) -> dict | None:
    keys = {"dataset", "model", "optimizer", "plateau", "mean", "tally", "state"}
    checkpoint = load_checkpoint(path, CHECKPOINT_FORMAT, keys, config.result_identity())
    if checkpoint is None:
        return None
    if checkpoint["dataset"] != data.identity["sha256"]:
        raise ValueError(
            f"{path}: checkpoint of a run on other images (fingerprint {checkpoint['dataset'][:12]}..., "
            f"now {data.identity['sha256'][:12]}...); use the same --data, or --force to start over"
        )
    return checkpoint


def _epoch_line(row: dict, epochs: int) -> str:
    return (
        f"epoch {row['epoch']}/{epochs}: lr {row['lr']:g}, train loss {row['train_loss']:.3f}, "
        f"train error {row['train_error']:.2f}%, val error {row['test_error']:.2f}% "
        f"(top-5 {row['test_top5_error']:.2f}%)"
    )


# ---------------------------------------------------------------------------------------------------------
# Results: the run-folder format of the CIFAR-10 runs (runs/folders.py), read by runs.loaders.load_runs
# ---------------------------------------------------------------------------------------------------------


def _write_results(
    folder: Path, config: ImageNetConfig, data: ImageNetData, run: Run, evaluations: dict, replicas: dict
):
    """history.csv and model.pt, then run.json last: its presence marks the run as finished."""
    state = run.state
    write_csv(folder / HISTORY_FILE, HISTORY_COLUMNS, state.history)
    weights = {
        "arch": config.arch,
        "shortcut": config.shortcut,
        "classes": data.classes,
        "mean": run.mean,
        "geometry": asdict(config.geometry()),
        "model": run.model.state_dict(),
    }
    atomic_write(folder / MODEL_FILE, lambda tmp: torch.save(weights, tmp))
    reported = "ten_crop" if "ten_crop" in evaluations else "center_crop"
    last = state.history[-1]
    with torch.device("meta"):  # shapes only: counting costs no memory
        skeleton = build_network(config, len(data.classes))
    provenance = run_provenance(
        run.procs.device,
        data.identity,
        config.seed,
        torchvision=torchvision.__version__,
        processes=run.procs.world,
        backend=torch.distributed.get_backend() if run.procs.distributed else None,
    )
    record = run_record(
        config,
        config.run_name(),
        provenance,
        identity=config.result_identity(),
        budget={
            "name": "imagenet",
            "label": config.budget_label(),
            "iterations": state.iteration,
            "epochs": config.epochs,
            "subset": None,
        },
        recipe={
            "paper_recipe": config.is_paper_recipe(),
            "batch_size": config.batch_size,
            "momentum": MOMENTUM,
            "weight_decay": WEIGHT_DECAY,
            "base_lr": BASE_LR,
            "lr_divisor": LR_DIVISOR,
            "schedule": config.schedule,
            "milestones": list(config.milestones) if config.schedule == "milestones" else None,
            "plateau": {
                "patience": config.patience,
                "threshold": PLATEAU_THRESHOLD,
                "metric": "val top-1 error",
            }
            if config.schedule == "plateau"
            else None,
            "lr_drops_at_epochs": _drop_epochs(state.history),
            "augmentation": f"shorter side in [{config.scale_min}, {config.scale_max}], random "
            f"{config.crop_size} crop, random horizontal flip, PCA colour (std {PCA_STD})",
            "preprocessing": "per-pixel mean of the center crops of "
            f"{min(config.mean_samples, len(data.train))} training images subtracted",
            "test": f"shorter side {config.test_size}, center {config.crop_size} crop"
            + (" and 10-crop" if config.ten_crop else ""),
        },
        final_test_view={"ten_crop": "10-crop", "center_crop": "center-crop"}[reported],
        final_test_error=evaluations[reported]["top1_error"],  # validation set, top-1, at the end
        final_top5_error=evaluations[reported]["top5_error"],
        final_train_error=last["train_error"],  # augmented mini-batches of the last epoch
        final_train_loss=last["train_loss"],
        evaluations=evaluations,
        params=count_params(skeleton),
        macs=count_macs(skeleton, (3, config.crop_size, config.crop_size)),
        wall_time_s=state.wall_time_s,
        train_time_s=state.train_time_s,
        sessions=state.sessions,
        replicas=replicas,
        speed={
            "amp": run.amp,
            "channels_last": run.memory_format == torch.channels_last,
            "workers": config.workers,
        },
        checkpoint="deleted when the run finished; the weights are in model.pt",
    )
    write_json(folder / RUN_FILE, record)
    (folder / CHECKPOINT_FILE).unlink(missing_ok=True)


def _drop_epochs(history: list[dict]) -> list[int]:
    """Epochs (1-based) that started at a lower rate than the one before."""
    return [b["epoch"] for a, b in zip(history[:-1], history[1:], strict=True) if b["lr"] < a["lr"]]
