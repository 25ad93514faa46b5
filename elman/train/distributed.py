"""Data-parallel training with torch.distributed, launched by ``torchrun``.

``torchrun --nproc-per-node N -m elman.cli train ...`` sets RANK/WORLD_SIZE/MASTER_ADDR; the
trainer then joins the process group (gloo on CPU, nccl on CUDA), wraps the model in
DistributedDataParallel, and each rank trains on its share of every global batch. Gradients
are averaged across ranks, so N ranks with B/N rows each take the step one process takes
with B rows.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def backend_for(device: str) -> str:
    """The collective backend for training on ``device``: nccl on CUDA, gloo on the CPU."""
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return "nccl" if cuda else "gloo"


def init_from_env(device: str = "cpu") -> bool:
    """Join the process group torchrun describes, with the backend ``device`` needs; False
    when not launched by torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        backend = backend_for(device)
        if backend == "nccl":  # each rank drives the GPU of its local rank
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return True


def rank_and_world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0)."""
    return rank_and_world()[0] == 0


def shard_rows(batch_size: int) -> slice:
    """The rows of a global batch this rank trains on; every rank gets the same number."""
    rank, world = rank_and_world()
    if batch_size % world:
        raise ValueError(
            f"batch_size={batch_size} must be divisible by the number of "
            f"processes ({world}) so every rank trains on equal rows"
        )
    per = batch_size // world
    return slice(rank * per, (rank + 1) * per)


def shutdown() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
