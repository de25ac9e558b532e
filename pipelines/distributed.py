"""torchrun support: one process group per run, NCCL on GPUs and gloo on CPUs; rank 0 alone writes.

Outside torchrun (no ``WORLD_SIZE`` in the environment) everything here is a no-op with rank 0 of 1.
"""
from __future__ import annotations

import os


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def init(device_kind: str) -> None:
    """Join the process group torchrun set up (once); pin this rank's GPU."""
    if world_size() == 1:
        return
    import torch
    import torch.distributed as dist
    if dist.is_initialized():
        return
    if device_kind == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device_kind == "cuda" else "gloo")


def torch_device(device_kind: str) -> str:
    return f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if device_kind == "cuda" else "cpu"


def all_sum(tensor):
    """Sum a tensor over ranks in place (no-op without a process group)."""
    if world_size() > 1:
        import torch.distributed as dist
        dist.all_reduce(tensor)
    return tensor


def barrier() -> None:
    if world_size() > 1:
        import torch.distributed as dist
        dist.barrier()


def shutdown() -> None:
    if world_size() > 1:
        import torch.distributed as dist
        if dist.is_initialized():
            dist.destroy_process_group()
