"""K seeds of one network stacked into one wide network (stacked.py) = K separate runs.

Mini-batches of 32 instead of the recipe's 128, one CPU thread: the same comparison in a quarter of the
time on a shared 2-core machine (the equivalence does not depend on the batch size).

Compared in fp32 on the CPU with oneDNN off, so that both sides run the same convolution algorithm
(PyTorch's reference one, which computes a grouped convolution group by group): what is compared is then
the stacking itself (grouped weights, batch norm over K x C channels, per-model padding and linear layer,
per-model data order and crops, the summed loss, the initialisation), not two algorithms' rounding.
With oneDNN on, the stacked and separate convolutions round differently (3e-8 after one step), and at
lr 0.1 such differences grow about fivefold per step early in training (4e-3 after 20 steps, measured).
"""

from contextlib import contextmanager

import pytest
import torch
from fakes import fake_cifar

from resnet_repro import training_loop
from resnet_repro.config import RunConfig
from resnet_repro.models import build_cifar
from resnet_repro.stacked import StackedLoop, stack_images, stack_models, unstack_state
from resnet_repro.training_loop import TrainingLoop, resolve_speed
from resnet_repro.weights import build_model

CPU = torch.device("cpu")
PLAIN_FP32 = {"amp": "off", "channels_last": "off", "compile": "off", "fused_optimizer": "off"}
BATCH = 32


@pytest.fixture(autouse=True)
def small_batches_one_thread(monkeypatch):
    monkeypatch.setattr(training_loop, "BATCH_SIZE", BATCH)  # TrainingLoop's mini-batches
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on two busy cores mostly wait for each other
    yield
    torch.set_num_threads(threads)


@contextmanager
def reference_convolutions():
    """oneDNN off: PyTorch's own convolution, which computes a grouped one group by group."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = enabled


def separate_and_stacked(arch, shortcut, seeds, steps, lr=0.1):
    """K TrainingLoops (as `train` builds them) and one StackedLoop of the same seeds, `steps` steps each."""
    data = fake_cifar(n_train=80, n_test=10)  # 2 batches an epoch: 20 steps reshuffle 10 times
    loops, models = [], []
    for seed in seeds:
        config = RunConfig(
            arch=arch, shortcut=shortcut, device="cpu", seed=seed, iterations=steps, **PLAIN_FP32
        )
        torch.manual_seed(seed)
        loops.append(TrainingLoop(build_model(config), data, CPU, resolve_speed(config, CPU, steps), seed))
        torch.manual_seed(seed)
        models.append(build_model(config))  # each initialised as if alone
    stacked = StackedLoop(models, data.train_images, data.train_labels, seeds, batch_size=BATCH)
    with reference_convolutions():
        for _ in range(steps):
            for loop in loops:
                loop.step(lr)
            stacked.step(lr)
    return loops, stacked, models[0]


def largest_difference(loops, stacked, model) -> float:
    states = unstack_state(stacked.model, model)
    return max(
        (loop.model.state_dict()[key].double() - state[key].double()).abs().max().item()
        for loop, state in zip(loops, states, strict=True)
        for key in state
    )


def test_two_stacked_resnets_are_two_separate_runs_after_20_steps():
    loops, stacked, model = separate_and_stacked("resnet8", "A", seeds=(0, 1), steps=20)
    assert largest_difference(loops, stacked, model) <= 1e-5  # measured: 0.0 (bit for bit)


@pytest.mark.parametrize(("arch", "shortcut"), [("resnet8", "B"), ("resnet8", "C"), ("plain8", None)])
def test_stacking_works_for_projection_shortcuts_and_plain_nets(arch, shortcut):
    loops, stacked, model = separate_and_stacked(arch, shortcut, seeds=(0, 1), steps=2)
    assert largest_difference(loops, stacked, model) <= 1e-5


def test_each_stacked_model_starts_as_it_would_alone():
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(build_cifar("resnet8"))
    stacked = stack_models(models)
    for model, state in zip(models, unstack_state(stacked, models[0]), strict=True):
        assert all(torch.equal(model.state_dict()[key], value) for key, value in state.items())
    images = [torch.randn(4, 3, 32, 32) for _ in models]
    for model in models:
        model.eval()
    stacked.eval()
    with torch.no_grad(), reference_convolutions():
        logits = stacked(stack_images(images))
        for k, (model, batch) in enumerate(zip(models, images, strict=True)):
            assert torch.equal(logits[:, k], model(batch))  # model k sees only its own images
