"""The training step of a CIFAR-10 run: the paper's SGD step (section 4.2) on mini-batches drawn and
augmented on the device, the test pass, and the speed options that make it fast without changing it.

Speed without changing the algorithm: the whole dataset lives on the device and every mini-batch is
drawn (a slice of a seeded permutation) and augmented there with tensor ops; channels-last layout; bf16
autocast on CUDA (weights, gradients, optimizer state and batch-norm statistics stay fp32); optional
torch.compile; losses and errors are summed on the device and read only at the eval points, so a step
never waits for the GPU. Each option can be switched off (`RunConfig`) and the resolved choice is
recorded in run.json.

`trainer.py` runs this loop through a schedule, with checkpoints and results; `fast_step.py` replays
its step as one CUDA graph.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from resnet_repro.cifar.augment import mean_image, normalize, random_crop_flip
from resnet_repro.cifar.data import CifarData
from resnet_repro.cifar.evaluation import autocast, gradient_norms, test_error
from resnet_repro.paper.recipe import BATCH_SIZE, MOMENTUM, PAD, WEIGHT_DECAY
from resnet_repro.runs.config import COMPILE_MIN_ITERATIONS, RunConfig
from resnet_repro.runs.runtime import Tally

AUGMENT_SEED_OFFSET = 1_000_003  # the augmentation stream is seeded apart from the data order


# ---------------------------------------------------------------------------------------------------------
# Speed options
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeedOptions:
    """The speed options as resolved for one device; none of them changes the algorithm."""

    channels_last: bool
    amp: bool  # bf16 autocast
    compile: str  # "off" or a torch.compile mode
    data_on_device: bool
    fused_optimizer: bool
    cudnn_benchmark: bool
    compile_fallback: bool = False  # "auto" asked: run eagerly if compilation fails instead of stopping
    # "off"; "captured": the whole step replayed as one CUDA graph; "eager": the graph's step function run
    # without a graph (the CPU: what the tests compare with the plain step). See fast_step.py.
    cuda_graph: str = "off"
    cuda_graph_fallback: bool = False  # "auto" asked: train without the graph if capturing it fails


def resolve_speed(config: RunConfig, device: torch.device, iterations: int) -> SpeedOptions:
    """Turn each "auto" into on/off for this device and run length."""
    cuda = device.type == "cuda"

    def switch(value: str, auto: bool) -> bool:
        return auto if value == "auto" else value == "on"

    compile_mode = config.compile
    if compile_mode == "auto":
        # Compiling removes the Python overhead per layer that dominates these small nets on a GPU, but
        # costs tens of seconds up front; Triton needs compute capability 7.0+. On the CPU, Inductor's C++
        # kernels fuse batch norm, ReLU and the bf16 casts around oneDNN's convolutions: ResNet-56 steps
        # measured 3.2x faster than eager on a 2-core AVX512-BF16 EPYC (benchmarks/train_throughput.py
        # --device cpu --compile off,default), after about a minute of compiling.
        capable = torch.cuda.get_device_capability(device) >= (7, 0) if cuda else device.type == "cpu"
        compile_mode = "default" if capable and iterations >= COMPILE_MIN_ITERATIONS else "off"
    return SpeedOptions(
        channels_last=switch(config.channels_last, True),  # faster on GPUs, and ~1.3x on this CPU too
        # bf16 on a CPU measurably slowed ResNet-56's training against fp32 (issue 22: benchmarks/
        # precision_check.py, 3 seeds): the CPU trains in the paper's fp32 unless bf16 is asked for by name.
        # On CUDA bf16 stays the default; no check of it there has run yet.
        amp=switch(config.amp, cuda),
        compile=compile_mode,
        data_on_device=switch(config.data_on_device, True),
        fused_optimizer=switch(config.fused_optimizer, cuda),
        cudnn_benchmark=switch(config.cudnn_benchmark, cuda),
        compile_fallback=config.compile == "auto",
        cuda_graph=_resolve_cuda_graph(config, cuda, compile_mode),
        cuda_graph_fallback=config.cuda_graph == "auto",
    )


def _resolve_cuda_graph(config: RunConfig, cuda: bool, compile_mode: str) -> str:
    """Whole-step CUDA graph: "captured" on CUDA, "eager" (the same step function, no graph) on the CPU
    when asked for by name, else "off". "auto" means "captured" wherever it can work."""
    if config.cuda_graph == "off" or (config.cuda_graph == "auto" and not cuda):
        return "off"
    if not cuda:
        return "eager"
    problems = []
    if config.data_on_device == "off":
        problems.append("data_on_device off (a graph cannot copy mini-batches from the host)")
    if config.fused_optimizer == "off":
        problems.append("fused_optimizer off (other SGD kernels read a tensor learning rate with .item())")
    if compile_mode not in ("off", "default"):
        problems.append(f"compile {compile_mode} (it captures CUDA graphs of its own)")
    if problems and config.cuda_graph == "on":
        raise ValueError(f"cuda_graph on cannot work with {'; '.join(problems)}")
    return "off" if problems else "captured"


# ---------------------------------------------------------------------------------------------------------
# The training loop: one model, its optimizer and its data stream
# ---------------------------------------------------------------------------------------------------------


class TrainingLoop:
    """The paper's SGD step on mini-batches drawn and augmented on the device, and the test pass.

    Knows nothing about schedules, files or progress bars (see `train`), so the benchmark times exactly
    the step that training runs.
    """

    def __init__(
        self, model: nn.Module, data: CifarData, device: torch.device, speed: SpeedOptions, seed: int
    ):
        self.device, self.speed = device, speed
        self.data_device = device if speed.data_on_device else torch.device("cpu")
        self.memory_format = torch.channels_last if speed.channels_last else torch.contiguous_format
        self.model = model.to(device, memory_format=self.memory_format)
        self.train_images = data.train_images.to(self.data_device)  # uint8 [N, 3, 32, 32]
        self.train_labels = data.train_labels.to(self.data_device)
        self.mean = mean_image(self.train_images)  # per-pixel mean of the training set, [3, 32, 32]
        self.test_images = normalize(data.test_images.to(self.data_device), self.mean)  # the single view
        self.test_images = self.test_images.contiguous(memory_format=self.memory_format)
        self.test_labels = data.test_labels.to(self.data_device)
        # A fixed, unaugmented mini-batch (the first 128 training images) for the gradient norms.
        self.probe_images = normalize(self.train_images[:BATCH_SIZE], self.mean).to(self.device)
        self.probe_images = self.probe_images.contiguous(memory_format=self.memory_format)
        self.probe_labels = self.train_labels[:BATCH_SIZE].to(self.device)
        if len(self.train_labels) < BATCH_SIZE:
            raise ValueError(
                f"{len(self.train_labels)} training images are fewer than one batch of {BATCH_SIZE}"
            )
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=0.0,  # set by the schedule before every step
            momentum=MOMENTUM,
            weight_decay=WEIGHT_DECAY,
            fused=True if speed.fused_optimizer else None,
        )
        # Two seeded streams on the data's device: drawing there never waits for (or syncs with) the host.
        self.order_generator = torch.Generator(self.data_device).manual_seed(seed)
        self.augment_generator = torch.Generator(self.data_device).manual_seed(seed + AUGMENT_SEED_OFFSET)
        self.order: torch.Tensor | None = None  # this epoch's permutation of the training images
        self.position = 0  # next unused index into `order`
        self.iteration = 0  # SGD steps taken
        self.interval = Tally(device)  # since the last eval point
        self.window = Tally(device)  # since the last warm-up check
        self.forward = self.model
        self._first_compiled_step = speed.compile != "off"
        if self._first_compiled_step:
            self.forward = torch.compile(self.model, mode=speed.compile, dynamic=False)

    def _autocast(self):
        return autocast(self.device, self.speed.amp)

    def next_indices(self) -> torch.Tensor:
        """The indices of the next 128 training images in the epoch's permutation.

        An epoch ends when fewer than a batch are left (they are skipped; the next epoch reshuffles all).
        """
        if self.order is None or self.position + BATCH_SIZE > len(self.order):
            n = len(self.train_labels)
            self.order = torch.randperm(n, generator=self.order_generator, device=self.data_device)
            self.position = 0
        index = self.order[self.position : self.position + BATCH_SIZE]
        self.position += BATCH_SIZE
        return index

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next 128 images of the epoch's permutation, normalized and augmented, and their labels."""
        index = self.next_indices()
        images = normalize(self.train_images[index], self.mean)  # float [128, 3, 32, 32], mean subtracted
        images = random_crop_flip(images, pad=PAD, generator=self.augment_generator)
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        return images, self.train_labels[index].to(self.device, non_blocking=True)

    def step(self, lr: float, track_window: bool = False) -> None:
        """One SGD step at learning rate `lr` on the next mini-batch. No host sync."""
        images, labels = self.next_batch()
        if self._first_compiled_step:
            self._first_compiled_step = False
            self._first_step_with_fallback(images, labels, lr, track_window)
        else:
            self._sgd_step(images, labels, lr, track_window)
        self.iteration += 1

    def _sgd_step(self, images: torch.Tensor, labels: torch.Tensor, lr: float, track_window: bool) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self._autocast():
            logits = self.forward(images)
            loss = F.cross_entropy(logits, labels)  # autocast computes it in fp32
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        loss_sum = loss.detach().double() * len(labels)
        wrong = (logits.detach().argmax(dim=1) != labels).sum()
        self.interval.add(loss_sum, wrong, len(labels))
        if track_window:
            self.window.add(loss_sum, wrong, len(labels))

    def _first_step_with_fallback(self, images, labels, lr, track_window) -> None:
        """Compilation happens in the first step; with compile "auto", a failure means eager, not a crash."""
        before = copy.deepcopy(self.model.state_dict())  # the failed attempt may have moved BN statistics
        try:
            self._sgd_step(images, labels, lr, track_window)
        except Exception as err:
            if not self.speed.compile_fallback:
                raise
            warnings.warn(
                f"torch.compile failed ({type(err).__name__}: {err}); training eagerly", stacklevel=3
            )
            self.model.load_state_dict(before)
            self.optimizer.zero_grad(set_to_none=True)
            self.forward = self.model
            self.speed = replace(self.speed, compile=f"off (compile failed: {type(err).__name__})")
            self._sgd_step(images, labels, lr, track_window)

    def evaluate(self, layers: list[tuple[str, nn.Module]] | None = None) -> tuple[float, list[float] | None]:
        """Test error (%) and, for `layers`, their responses' standard deviations (see evaluation.py).

        Runs the eager model, with the training step's bf16 setting: a compiled one would compile again
        for eval mode for little gain.
        """
        return test_error(self.model, self.test_images, self.test_labels, self.device, self.speed.amp, layers)

    def gradient_norms(self, layers: list[tuple[str, nn.Module]]) -> list[float]:
        """Per-layer gradient norms on the fixed probe mini-batch; changes no state (see evaluation.py)."""
        return gradient_norms(self.model, self.probe_images, self.probe_labels, layers, self.speed.amp)

    def state_dict(self) -> dict:
        """Everything the next step depends on, as tensors and plain types (for weights_only loading)."""
        return {
            "iteration": self.iteration,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "order_generator": self.order_generator.get_state(),
            "augment_generator": self.augment_generator.get_state(),
            "order": None if self.order is None else self.order.cpu(),
            "position": self.position,
            "interval": self.interval.state_dict(),
            "window": self.window.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.iteration = state["iteration"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.order_generator.set_state(state["order_generator"])
        self.augment_generator.set_state(state["augment_generator"])
        self.order = None if state["order"] is None else state["order"].to(self.data_device)
        self.position = state["position"]
        self.interval.load_state_dict(state["interval"])
        self.window.load_state_dict(state["window"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(state["cuda_rng"])
