"""Is one stacked network of K seeds (resnet_repro/stacked.py) faster per model than K separate ones?

Times one SGD step (forward, loss, backward, fused SGD) of K separate copies of a network against one step
of the same K stacked into one wide network (grouped convolutions, batch norm over K x C channels), on
fixed random mini-batches (the data pipeline is the same for both, so it is left out), with the trainer's
speed settings: bf16 autocast, channels-last, and on CUDA each variant's step captured as CUDA graphs
(one per separate model, one for the stack) unless --no-graph. Reported: ms per step of all K, and ms per
model-step. Stacking is worth wiring into training only if it wins clearly at the K a sweep would use
(the same net with several seeds: ResNet-110 x 5, the shortcut runs x 3).

    python benchmarks/stacked_throughput.py --device cuda --arch resnet56 --k 1,2,4,8
    python benchmarks/stacked_throughput.py --device cpu --arch resnet8 --k 2 --steps 2 --rounds 1
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from resnet_repro.models import build_cifar
from resnet_repro.results import write_json
from resnet_repro.runtime import device_name, resolve_device
from resnet_repro.schedule import BATCH_SIZE, MOMENTUM, WEIGHT_DECAY
from resnet_repro.stacked import stack_images, stack_models, stacked_loss


def make_step(model, images, labels, device, amp, graph, loss_fn):
    """A zero-argument step function of `model` on fixed inputs: eager, or replaying a captured graph."""
    lr = torch.tensor(0.01, device=device)  # a tensor: capturable, read by pointer by the fused kernel
    optimizer = torch.optim.SGD(
        model.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, fused=device.type == "cuda"
    )

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_fn(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    if not graph:
        return step
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):  # momentum buffers, cuDNN's choices
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    captured = torch.cuda.CUDAGraph()
    optimizer.zero_grad(set_to_none=True)
    with torch.cuda.graph(captured):
        step()
    return captured.replay


def ms_per_call(function, device, steps, rounds) -> float:
    best = float("inf")
    for _ in range(rounds):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        began = time.perf_counter()
        for _ in range(steps):
            function()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, (time.perf_counter() - began) / steps * 1000)
    return best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--arch", default="resnet56")
    parser.add_argument("--k", default="1,2,4,8", help="numbers of models, comma-separated")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; the best counts")
    parser.add_argument("--no-graph", action="store_true", help="eager steps even on CUDA")
    parser.add_argument("--no-amp", action="store_true", help="fp32 instead of bf16 autocast")
    parser.add_argument("--json", metavar="FILE", help="also write the figures there")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    amp, graph = not args.no_amp, cuda and not args.no_graph
    if cuda:
        torch.backends.cudnn.benchmark = True
    layout = torch.channels_last
    print(f"{args.arch} on {device_name(device)}, bf16 {amp}, CUDA graphs {graph}, torch {torch.__version__}")
    rows = []
    for k in [int(value) for value in args.k.split(",")]:
        models = []
        for seed in range(k):
            torch.manual_seed(seed)
            models.append(build_cifar(args.arch))
        batches = [torch.randn(BATCH_SIZE, 3, 32, 32, device=device) for _ in range(k)]
        labels = [torch.randint(0, 10, (BATCH_SIZE,), device=device) for _ in range(k)]
        separate = [
            make_step(
                model.to(device, memory_format=layout),
                images.contiguous(memory_format=layout),
                target,
                device,
                amp,
                graph,
                F.cross_entropy,
            )
            for model, images, target in zip(models, batches, labels, strict=True)
        ]
        stacked = make_step(
            stack_models(models).to(device, memory_format=layout),
            stack_images(batches).contiguous(memory_format=layout),
            torch.stack(labels, dim=1),
            device,
            amp,
            graph,
            stacked_loss,
        )
        for step in separate:
            step()
        stacked()
        separate_ms = ms_per_call(
            lambda steps=separate: [step() for step in steps], device, args.steps, args.rounds
        )
        stacked_ms = ms_per_call(stacked, device, args.steps, args.rounds)
        row = {
            "k": k,
            "separate_ms_per_step": separate_ms,
            "stacked_ms_per_step": stacked_ms,
            "separate_ms_per_model_step": separate_ms / k,
            "stacked_ms_per_model_step": stacked_ms / k,
            "speedup": separate_ms / stacked_ms,
        }
        rows.append(row)
        print(
            f"K={k}: separate {separate_ms:.3f} ms ({separate_ms / k:.3f} per model), "
            f"stacked {stacked_ms:.3f} ms ({stacked_ms / k:.3f} per model): stacked {row['speedup']:.2f}x"
        )
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "stacked_throughput",
                "device": device_name(device),
                "torch": torch.__version__,
                "arch": args.arch,
                "amp": amp,
                "cuda_graphs": graph,
                "steps": args.steps,
                "rounds": args.rounds,
                "results": rows,
            },
        )


if __name__ == "__main__":
    main()
