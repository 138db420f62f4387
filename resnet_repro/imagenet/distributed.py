"""This process's place among the training processes, on PyTorch's own distributed engine.

Launched by `torchrun` (which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT), a
process joins the group with `init_process_group` from the environment: NCCL between GPUs, gloo
between CPU processes. Launched as a plain `python -m resnet_repro imagenet ...`, it is the only one
and every collective below is a no-op, so the same command line and code serve both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from resnet_repro.runs.runtime import resolve_device


@dataclass(frozen=True)
class Processes:
    rank: int  # 0 .. world-1; rank 0 writes every file
    world: int  # number of training processes, over all nodes
    local_rank: int  # this process's GPU on its node
    local_world: int  # processes on this node
    device: torch.device  # cuda:<local_rank>, or cpu
    owns_group: bool  # this call created the process group (and destroys it in `stop`)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place sum over all processes (tensor on `device`)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def max_(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor

    def broadcast_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Overwrite `tensor` with rank 0's copy."""
        if self.distributed:
            dist.broadcast(tensor, src=0)
        return tensor

    def share(self, value):
        """Rank 0's value of a picklable object, on every process."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value) -> list:
        """Every process's value of a picklable object, in rank order, on every process."""
        if not self.distributed:
            return [value]
        values = [None] * self.world
        dist.all_gather_object(values, value)
        return values

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def stop(self) -> None:
        if self.owns_group and self.distributed:
            dist.destroy_process_group()


def start_processes(device: str = "auto") -> Processes:
    """Join the process group torchrun describes (or the one already there), or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    owns_group = False
    if "RANK" in os.environ and not dist.is_initialized():
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world)
        owns_group = True
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return Processes(rank, world, local_rank, local_world, resolved, owns_group)
