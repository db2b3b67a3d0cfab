"""DDP through torchrun: NCCL on GPUs, gloo on CPUs; everything is a no-op in a single process."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as td


def is_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> None:
    if is_distributed() and not td.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        td.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank())


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def rank() -> int:
    return td.get_rank() if td.is_initialized() else 0


def world() -> int:
    return td.get_world_size() if td.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def shard(items: np.ndarray) -> np.ndarray:
    """This rank's share of an epoch's (already shuffled) items; equal length on every rank."""
    if world() == 1:
        return items
    per_rank = len(items) // world()
    return items[rank() * per_rank:(rank() + 1) * per_rank]


def wrap(network: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    if world() == 1:
        return network
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(network, device_ids=device_ids)


def barrier() -> None:
    if td.is_initialized():
        td.barrier()


def cleanup() -> None:
    if td.is_initialized():
        td.destroy_process_group()
