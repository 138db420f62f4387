"""The whole training step as one CUDA graph: `TrainingLoop.step`'s SGD step, launched as one replay.

Why: a ResNet-56 step at batch 128 is about 0.1 ms of arithmetic on an H200 but several hundred small
kernels; launched one by one from Python the step is bound by the launches (~2.5-5 ms, est.). A graph
launches them all at once (1-1.5 ms, est.). Switched on by
`RunConfig.cuda_graph` ("off" by default until a device session's preflight has shown it right).

What a captured graph needs, and how this module gives it:

- Fixed inputs. The graph reads everything that changes between steps from fixed buffers (`StepInputs`):
  the 128 indices of the mini-batch, the crop offsets and flips, the learning rate and whether the
  warm-up window counts the step. They are refilled in place before every replay, outside the graph, by
  the plain step's own code from the run's own seeded generators: a graph run draws the same mini-batches
  and crops as a plain run, the generators' states in a checkpoint stay exact, and no generator has to be
  registered with the graph. It costs three small kernel launches per step (index copy, two draws).
- The learning rate as a float32 tensor on the device, refilled with `fill_` when the schedule changes it.
  A Python float would be frozen into the graph: the schedule would silently never decay. The fused SGD
  kernel reads a device tensor by pointer; the foreach and for-loop SGD call .item() on it, a host sync
  that capture refuses, so the graph needs the fused optimizer (`cifar.loop.resolve_speed` checks).
- No host sync inside: losses and errors are summed on the device into the loop's `Tally`s (the warm-up
  window through a mask, so the same graph serves steps inside and outside it). ResNet-110's warm-up check
  reads the window between replays, as the plain loop does.
- Warm-up before capture: the first `GRAPH_WARMUP_STEPS` iterations (after construction or a checkpoint
  load) run eagerly, on a side stream. They are real iterations of the recipe, counted as such, and they
  create the momentum buffers (the first SGD step takes another code path than the others: a graph
  captured there would repeat it forever), let cuDNN pick its algorithms and torch.compile compile. The
  graph is captured at the next iteration, then replayed for it and every later one.
- Addresses that never move: the graph's temporaries (activations, gradients) live in its private memory
  pool. Parameters, batch-norm buffers, tallies and momentum keep their addresses (checkpoint loading
  copies the model in place; an optimizer state load replaces the momentum buffers, so a load drops the
  graph and it is captured again after a new warm-up).
- Autocast is entered outside the compiled model (inside, it defeats the compile cache: pytorch#191106),
  and wholly inside the captured step, so no autocast cache crosses the capture.

On the CPU ("cuda_graph" resolved to "eager") the same step function runs without a graph: the tests show
it gives the plain step's numbers bit for bit, and that it contains no operation that syncs with the host.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from resnet_repro.cifar.augment import crop_flip, draw_crops, normalize
from resnet_repro.cifar.data import CifarData
from resnet_repro.cifar.loop import SpeedOptions, TrainingLoop
from resnet_repro.paper.recipe import BATCH_SIZE, PAD

GRAPH_WARMUP_STEPS = 3  # eager iterations before capture (PyTorch's docs use 3; they are real iterations)
_CAPTURE_LOCK = threading.Lock()  # one capture at a time per process (runs in threads: multirun.py)

# aten operations whose result the host must wait for (a data-dependent shape or a value read back):
# on a GPU each is a host sync, which a CUDA graph capture refuses. Used by `host_syncs`.
SYNCING_OPS = (
    "_local_scalar_dense",  # .item(), float(t), bool(t), int(t)
    "nonzero",
    "masked_select",
    "unique",
    "_unique",
    "_unique2",
    "unique_consecutive",
    "unique_dim",
    "equal",
    "is_nonzero",
    "repeat_interleave",
    "masked_scatter",
)


class StepInputs:
    """What a step reads that changes between steps, in fixed device buffers refilled before each step."""

    def __init__(self, device: torch.device):
        self.index = torch.zeros(BATCH_SIZE, dtype=torch.int64, device=device)
        self.offsets = torch.zeros(2, BATCH_SIZE, dtype=torch.int64, device=device)  # crop rows, columns
        self.flips = torch.zeros(BATCH_SIZE, dtype=torch.int64, device=device)  # 1 = mirror
        self.lr = torch.zeros((), dtype=torch.float32, device=device)
        self.track = torch.zeros((), dtype=torch.bool, device=device)  # add this step to the warm-up window
        self.lr_value = 0.0  # what `lr` holds, known on the host: refilled only when the schedule changes
        self._track_value = False

    def set_lr(self, lr: float) -> None:
        if lr != self.lr_value:
            self.lr.fill_(lr)  # a kernel with the value as argument: no host sync
            self.lr_value = lr

    def set_track(self, track: bool) -> None:
        if track != self._track_value:
            self.track.fill_(track)
            self._track_value = track


class GraphedTrainingLoop(TrainingLoop):
    """`TrainingLoop` whose step is replayed as one CUDA graph (speed.cuda_graph "captured"), or whose
    graph step runs eagerly ("eager": on the CPU, for the tests and the preflight).

    Same data order, augmentation, numbers (bit for bit on the CPU), state_dict and checkpoints as the
    plain loop: a run can switch between the two when it resumes.
    """

    def __init__(
        self, model: nn.Module, data: CifarData, device: torch.device, speed: SpeedOptions, seed: int
    ):
        if speed.cuda_graph not in ("captured", "eager"):
            raise ValueError(
                f"GraphedTrainingLoop needs cuda_graph captured or eager, got {speed.cuda_graph!r}"
            )
        if speed.cuda_graph == "captured" and device.type != "cuda":
            raise ValueError("a captured CUDA graph needs a CUDA device")
        super().__init__(model, data, device, speed, seed)
        if self.data_device != self.device:
            raise ValueError("the graph step needs the data on the device (data_on_device on)")
        self.inputs = StepInputs(device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0  # since construction or the last load: capture after GRAPH_WARMUP_STEPS
        self._side_stream = None

    @property
    def capturing(self) -> bool:
        return self.speed.cuda_graph == "captured"

    # -- the step ---------------------------------------------------------------------------------------

    def fill_inputs(self, lr: float, track_window: bool = False) -> None:
        """Draw the next mini-batch and its crops into the fixed buffers (outside the graph, no host sync)."""
        self.inputs.index.copy_(self.next_indices())
        draw_crops(BATCH_SIZE, PAD, self.augment_generator, out=(self.inputs.offsets, self.inputs.flips))
        self.inputs.set_lr(lr)
        self.inputs.set_track(track_window)

    def graph_step(self) -> None:
        """The step a graph captures: reads only `inputs`, the data and the model's and optimizer's state,
        writes only those states and the tallies, and never reads a value back to the host."""
        inputs = self.inputs
        for group in self.optimizer.param_groups:
            group["lr"] = inputs.lr  # again after every checkpoint load, which puts a float there
        images = normalize(self.train_images[inputs.index], self.mean)
        images = crop_flip(images, inputs.offsets[0], inputs.offsets[1], inputs.flips.bool(), PAD)
        images = images.contiguous(memory_format=self.memory_format)
        labels = self.train_labels[inputs.index]
        with self._autocast():
            logits = self.forward(images)
            loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)  # at capture: the gradients go to the graph's pool
        loss.backward()
        self.optimizer.step()
        loss_sum = loss.detach().double() * BATCH_SIZE
        wrong = (logits.detach().argmax(dim=1) != labels).sum()
        self.interval.loss_sum += loss_sum
        self.interval.wrong += wrong
        self.window.loss_sum += torch.where(inputs.track, loss_sum, 0.0)  # + exactly 0 when not tracked
        self.window.wrong += torch.where(inputs.track, wrong, 0)

    def step(self, lr: float, track_window: bool = False) -> None:
        """One SGD step at learning rate `lr` on the next mini-batch, as the plain loop's. No host sync."""
        self.fill_inputs(lr, track_window)
        if self.graph is None and self.capturing and self.eager_steps >= GRAPH_WARMUP_STEPS:
            self._capture()
        if self.graph is not None:
            self.graph.replay()
        else:
            self._eager_step()
        self.interval.seen += BATCH_SIZE
        if track_window:
            self.window.seen += BATCH_SIZE
        self.iteration += 1

    def _sgd_step(self, images, labels, lr, track_window) -> None:
        """What TrainingLoop's compile fallback calls: here the graph step (its inputs are filled)."""
        self.graph_step()

    def _eager_step(self) -> None:
        """The graph step without a graph; before a capture on CUDA, on a side stream (PyTorch's recipe)."""
        stream = None
        if self.capturing:
            if self._side_stream is None:
                self._side_stream = torch.cuda.Stream(self.device)
            stream = self._side_stream
            stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            if self._first_compiled_step:
                self._first_compiled_step = False
                self._first_step_with_fallback(None, None, None, None)  # compile fails -> eager, if "auto"
            else:
                self.graph_step()
        if stream is not None:
            torch.cuda.current_stream(self.device).wait_stream(stream)
        self.eager_steps += 1

    def _capture(self) -> None:
        """Capture `graph_step` (nothing runs: the replay that follows is this iteration's step)."""
        graph = torch.cuda.CUDAGraph()
        try:
            with _CAPTURE_LOCK:
                self.optimizer.zero_grad(set_to_none=True)
                # thread_local: other threads (other runs of multirun.py) may launch work meanwhile.
                with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                    self.graph_step()
        except Exception as err:
            if not self.speed.cuda_graph_fallback:
                raise
            reason = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
            warnings.warn(
                f"capturing the training step failed ({reason}); training without a graph", stacklevel=3
            )
            self.optimizer.zero_grad(set_to_none=True)
            self.speed = replace(self.speed, cuda_graph=f"off (capture failed: {type(err).__name__})")
            return
        self.graph = graph

    # -- checkpoints ------------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """As the plain loop's: the learning rate in the optimizer's state is the schedule's float."""
        state = super().state_dict()
        for group in state["optimizer"]["param_groups"]:
            group["lr"] = self.inputs.lr_value
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.graph = None  # the optimizer's momentum buffers are new tensors: capture again after a warm-up
        self.eager_steps = 0


# ---------------------------------------------------------------------------------------------------------
# Checks that the preflight and the tests share
# ---------------------------------------------------------------------------------------------------------


def state_tensors(loop: TrainingLoop) -> list[torch.Tensor]:
    """Every tensor a training step changes in place: parameters, buffers, momentum, the tallies."""
    tensors = [*loop.model.parameters(), *loop.model.buffers()]
    tensors += [
        state["momentum_buffer"] for state in loop.optimizer.state.values() if "momentum_buffer" in state
    ]
    tensors += [loop.interval.loss_sum, loop.interval.wrong, loop.window.loss_sum, loop.window.wrong]
    return tensors


def host_syncs(function, *args, **kwargs) -> list[str]:
    """The aten operations of `function(*args, **kwargs)` that would make the host wait for the device
    (SYNCING_OPS, and indexing with a boolean mask), in the order they ran; empty when there are none.

    Works on any device (it looks at the operations, not at timings), so the CPU tests can show that
    the graph step is free of them. It sees the operations Python and autograd call, not those a kernel
    calls inside itself (the CPU's fused SGD reads a tensor learning rate that way; the CUDA one reads it
    by pointer); on CUDA, torch.cuda.set_sync_debug_mode checks the real thing (the preflight does).
    """
    from torch.utils._python_dispatch import TorchDispatchMode

    found: list[str] = []

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            boolean_index = name in ("index", "index_put", "index_put_") and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool
                for i in (args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else ())
            )
            if name in SYNCING_OPS or boolean_index:
                found.append(str(func))
            return func(*args, **(kwargs or {}))

    with Recorder():
        function(*args, **kwargs)
    return found
