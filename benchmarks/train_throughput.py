"""Training throughput: our trainer's step against the same training written the common way.

Baseline, the usual CIFAR-10 recipe code: a Dataset of PIL images with torchvision's RandomCrop(32,
padding=4), RandomHorizontalFlip, ToTensor and Normalize run on the CPU in DataLoader worker processes,
batches copied to the device, fp32, eager, NCHW, torch.optim.SGD with its default implementation.
Ours: `resnet_repro.cifar.loop.TrainingLoop.step`, the very step `train` runs, with the speed options
`resolve_speed` picks for the device (or the ones given). Same network, batch 128, momentum, weight
decay and learning rate; both measured in this one process, in alternating rounds (the best round of
each counts, so a busy machine does not favour either), on the same images.

    python benchmarks/train_throughput.py --device cpu --arch resnet20 --steps 10
    python benchmarks/train_throughput.py --device cuda --arch resnet56 --steps 300
    python benchmarks/train_throughput.py --device cuda --arch resnet56 --compile off,default,reduce-overhead
    python benchmarks/train_throughput.py --device cuda --arch resnet20,resnet56,resnet110 \
        --compile off,default --cuda-graph off,on --json data/benchmarks/

--json writes the figures as a result file (one per session, committed under data/benchmarks/): device,
torch version, commit, date, and for each network and mode ms/step, images/s, the baseline's figures
from the same run and the ratio. It is rewritten after each network, so a run cut short keeps what it
measured. A folder there gets a file named by the date and the device.

Images are random uint8 pixels of CIFAR-10's shape (50,000 training images) unless --data gives a real
source: throughput does not depend on what the pixels show.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from resnet_repro.cifar.data import CifarData, load_cifar10
from resnet_repro.cifar.loop import TrainingLoop, resolve_speed
from resnet_repro.cifar.trainer import loop_class
from resnet_repro.paper.recipe import BASE_LR, BATCH_SIZE, MOMENTUM, PAPER_ITERATIONS, WEIGHT_DECAY
from resnet_repro.runs.config import COMPILE_MODES, SWITCH, RunConfig
from resnet_repro.runs.files import write_json
from resnet_repro.runs.runtime import cudnn_benchmark, device_name, git_commit, resolve_device
from resnet_repro.runs.weights import build_model


class PILCifar(Dataset):
    """What torchvision.datasets.CIFAR10 does per item: a PIL image from the uint8 array, then transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images = images.permute(0, 2, 3, 1).numpy()  # [N, 32, 32, 3], as CIFAR10.data
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def synthetic_data(n_train: int = 50_000, n_test: int = 1_000) -> CifarData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_train + n_test, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(n_train + n_test) % 10
    return CifarData(
        images[:n_train],
        labels[:n_train],
        images[n_train:],
        labels[n_train:],
        [str(i) for i in range(10)],
        {"name": "synthetic"},
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def images_per_second(step, device: torch.device, steps: int) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * BATCH_SIZE / (time.perf_counter() - start)


def baseline_step(config: RunConfig, data: CifarData, device: torch.device, workers: int):
    """One step of the common way: DataLoader batch, CPU transforms, copy, fp32 eager SGD step."""
    mean = (data.train_images[:10_000].float() / 255).mean(dim=(0, 2, 3)).tolist()
    std = (data.train_images[:10_000].float() / 255).std(dim=(0, 2, 3)).tolist()
    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    loader = DataLoader(
        PILCifar(data.train_images, data.train_labels, transform),
        batch_size=BATCH_SIZE,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
    )
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=BASE_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    batches = _forever(loader)

    def step():
        images, labels = next(batches)
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def _forever(loader):
    while True:
        yield from loader


def our_step(config: RunConfig, data: CifarData, device: torch.device) -> TrainingLoop:
    """The trainer's own loop (the graph's with --cuda-graph on), with the speed options of a full run."""
    speed = resolve_speed(config, device, PAPER_ITERATIONS)
    torch.manual_seed(config.seed)
    return loop_class(speed)(build_model(config), data, device, speed, config.seed)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--arch",
        default="resnet20",
        help="one or several, comma-separated: resnet20, resnet56, plain20, ... (default resnet20)",
    )
    parser.add_argument("--steps", type=int, help="timed steps per round (default: 10 CPU, 300 CUDA)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed rounds; the best counts")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default: 3 CPU, 50 CUDA)")
    parser.add_argument(
        "--workers", type=int, default=min(8, os.cpu_count() or 1), help="baseline loader workers"
    )
    parser.add_argument("--data", help="a CIFAR-10 source for load_cifar10 (default: random pixels)")
    parser.add_argument("--images", type=int, default=50_000, help="random training images (without --data)")
    for option in ("channels_last", "amp", "data_on_device", "fused_optimizer", "cudnn_benchmark"):
        parser.add_argument(f"--{option.replace('_', '-')}", choices=SWITCH, default="auto", help="ours")
    parser.add_argument(
        "--compile",
        type=_compile_modes,
        default=("auto",),
        metavar="MODE[,MODE...]",
        help=f"ours, one variant per mode, from {', '.join(COMPILE_MODES)} (default auto: as a full run)",
    )
    parser.add_argument(
        "--cuda-graph",
        type=_graph_modes,
        default=("off",),
        metavar="off|on|off,on",
        help="ours: without and/or with the whole step as one CUDA graph (x each compile mode) (default off)",
    )
    parser.add_argument(
        "--json", metavar="PATH", help="also write the figures there (a .json file or a folder)"
    )
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    steps = args.steps or (300 if cuda else 10)
    warmup = args.warmup if args.warmup is not None else (50 if cuda else 3)
    data = load_cifar10(args.data, progress=False) if args.data else synthetic_data(args.images)
    print(
        f"{args.arch}, batch {BATCH_SIZE}, on {device_name(device)} ({device.type}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"{warmup} warm-up steps, then {args.rounds} rounds of {steps} timed steps each, alternating"
    )
    record = _record(args, device, steps, warmup)
    json_path = _json_path(args.json, record) if args.json else None
    for arch in [a.strip() for a in args.arch.split(",") if a.strip()]:
        rows, failed = measure(arch, args, device, data, steps, warmup)
        record["results"] += rows
        record["failed"] += failed
        if json_path is not None:
            write_json(json_path, record)  # after each network: a run cut short keeps what it measured
    if json_path is not None:
        print(f"wrote {json_path}")


def measure(arch: str, args, device: torch.device, data: CifarData, steps: int, warmup: int):
    """Baseline and every variant of ours on `arch`, in alternating rounds: (result rows, failures)."""
    speed_fields = ("channels_last", "amp", "data_on_device", "fused_optimizer", "cudnn_benchmark")
    options = {name: getattr(args, name) for name in speed_fields}
    configs = {
        (mode, graph): RunConfig(arch=arch, device=args.device, compile=mode, cuda_graph=graph, **options)
        for graph in args.cuda_graph
        for mode in args.compile
    }
    several = len(configs) > 1
    first = next(iter(configs.values()))
    steps_of = {"baseline": baseline_step(first, data, device, args.workers)}
    labels = {"baseline": f"DataLoader, {args.workers} workers, CPU transforms, fp32, eager"}
    speeds = {"baseline": None}
    failed = []
    for (mode, graph), config in configs.items():
        name = f"ours[compile={mode},graph={graph}]" if several else "ours"
        try:
            loop = our_step(config, data, device)
        except ValueError as err:  # an impossible combination (say, a graph with the data on the host)
            print(f"{arch} {name}: cannot run ({err})")
            failed.append({"arch": arch, "mode": name, "error": str(err)})
            continue
        steps_of[name] = lambda loop=loop: loop.step(BASE_LR)
        speeds[name] = loop
    rates = {name: [] for name in steps_of}
    warmup_s = {}
    with cudnn_benchmark(resolve_speed(first, device, PAPER_ITERATIONS).cudnn_benchmark):
        for name, step in list(steps_of.items()):  # compilation, capture, cuDNN autotuning, loader start-up
            began = time.perf_counter()
            try:
                for _ in range(warmup):
                    step()
                sync(device)
            except Exception as err:  # one variant failing (say, a compile mode) must not end the others
                message = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
                print(f"{arch} {name}: failed in warm-up ({message})")
                failed.append({"arch": arch, "mode": name, "error": message})
                del steps_of[name], rates[name]
                continue
            # Printed as it goes: a run cut short by a time limit still tells what it measured.
            warmup_s[name] = time.perf_counter() - began
            print(
                f"{arch} {name}: {warmup} warm-up steps (start-up, compilation) took {warmup_s[name]:.1f} s",
                flush=True,
            )
        for number in range(1, args.rounds + 1):  # alternating, so a busy machine slows all alike
            for name, step in steps_of.items():
                rates[name].append(images_per_second(step, device, steps))
            print(
                f"{arch} round {number}: "
                + ", ".join(f"{name} {values[-1]:.0f}" for name, values in rates.items())
            )
    for name, loop in speeds.items():
        if loop is not None and name in rates:  # after the warm-up: what the variant really ran
            labels[name] = ", ".join(
                f"{key}={value}" for key, value in vars(loop.speed).items() if not key.endswith("_fallback")
            )
    best = {name: max(values) for name, values in rates.items()}
    rows = []
    for name, rate in best.items():
        rounds = ", ".join(f"{r:.1f}" for r in rates[name])
        full = PAPER_ITERATIONS * BATCH_SIZE / rate
        print(
            f"{arch} {name} ({labels[name]}): best {rate:.1f} images/s (rounds: {rounds}); "
            f"the paper's {PAPER_ITERATIONS:,} iterations at this rate: {full:.0f} s"
        )
        baseline = best.get("baseline")
        rows.append(
            {
                "arch": arch,
                "mode": name,
                "speed": labels[name],
                "ms_per_step": 1000 * BATCH_SIZE / rate,
                "images_per_s": rate,
                "rounds_images_per_s": rates[name],
                "warmup_s": warmup_s.get(name),
                "baseline_ms_per_step": None if baseline is None else 1000 * BATCH_SIZE / baseline,
                "baseline_images_per_s": baseline,
                "ratio": None if baseline is None else rate / baseline,
            }
        )
    for name in best:
        if name != "baseline" and "baseline" in best:
            print(f"{arch} ratio {name} / baseline: {best[name] / best['baseline']:.2f}x")
    return rows, failed


def _record(args, device: torch.device, steps: int, warmup: int) -> dict:
    commit, dirty = git_commit()
    return {
        "benchmark": "train_throughput",
        "device": device_name(device),
        "device_type": device.type,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "commit": commit,
        "dirty": dirty,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "batch_size": BATCH_SIZE,
            "steps_per_round": steps,
            "rounds": args.rounds,
            "warmup_steps": warmup,
            "baseline_workers": args.workers,
            "data": args.data or f"random pixels, {args.images} images",
            "cpu_threads": torch.get_num_threads(),
        },
        "results": [],
        "failed": [],
    }


def _json_path(path: str, record: dict) -> Path:
    """`path` itself if it names a .json file, else a file in that folder named by date and device."""
    target = Path(path)
    if target.suffix == ".json":
        return target
    stamp = record["date"][:19].replace("-", "").replace(":", "")
    device = re.sub(r"[^a-z0-9]+", "-", record["device"].lower()).strip("-")
    return target / f"{stamp}Z-{device}.json"


def _graph_modes(text: str) -> tuple[str, ...]:
    modes = tuple(mode.strip() for mode in text.split(",") if mode.strip())
    if not modes or any(mode not in ("off", "on") for mode in modes):
        raise argparse.ArgumentTypeError(f"--cuda-graph takes off, on or off,on; got {text!r}")
    return modes


def _compile_modes(text: str) -> tuple[str, ...]:
    modes = tuple(mode.strip() for mode in text.split(",") if mode.strip())
    unknown = [mode for mode in modes if mode not in COMPILE_MODES]
    if not modes or unknown:
        allowed = ", ".join(COMPILE_MODES)
        raise argparse.ArgumentTypeError(f"compile modes must be from {allowed}, got {text!r}")
    return modes


if __name__ == "__main__":
    main()
