"""torchrun environment, in the manner of torchvision's references/detection/utils.py."""

from __future__ import annotations

import os
from typing import Callable

import torch
import torch.distributed as dist

from gliomask.errors import GliomaskError
from gliomask.utils import local_cuda_index


def init_distributed(device_kind: str) -> tuple[int, int, int]:
    """Initialise the process group when launched by torchrun. Returns (rank, world_size, local_rank)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1, 0
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device_kind == "cuda" else "gloo"
        if device_kind == "cuda":
            torch.cuda.set_device(local_cuda_index())
        dist.init_process_group(backend=backend)
    return rank, world, local


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def rank() -> int:
    return dist.get_rank() if is_dist() else 0


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_dist():
        dist.barrier()


def reduce_dict(values: dict[str, torch.Tensor], average: bool = True) -> dict[str, torch.Tensor]:
    """All-reduce a dict of scalar tensors so that every rank logs the same figures."""
    if world_size() < 2:
        return values
    with torch.no_grad():
        names = sorted(values)
        stacked = torch.stack([values[k].detach().float() for k in names])
        dist.all_reduce(stacked)
        if average:
            stacked /= world_size()
        return dict(zip(names, stacked))


def all_reduce_max(value: float, device) -> float:
    if world_size() < 2:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def cleanup() -> None:
    if is_dist():
        dist.destroy_process_group()


def all_gather_object(obj) -> list:
    """Every rank's ``obj``, in rank order (a one-element list without a process group)."""
    if world_size() < 2:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def on_main(work: Callable[[], None]) -> None:
    """Run ``work`` on rank 0 only (writing the run folder, a checkpoint) and tell every rank how it went.

    An error there (a full disk, a read-only folder, a planted link) is raised on rank 0 as it is and
    on every other rank as one GliomaskError, so that no rank is left waiting in the next collective
    for a rank that has gone. Doubles as a barrier.
    """
    failure = None
    if is_main():
        try:
            work()
        except (GliomaskError, OSError) as exc:
            if world_size() < 2:
                raise
            failure = exc
    if world_size() < 2:
        return
    box = [None if failure is None else str(failure)]
    dist.broadcast_object_list(box, src=0)
    if failure is not None:
        raise failure
    if box[0] is not None:
        raise GliomaskError(f"rank 0 stopped: {box[0]}")
