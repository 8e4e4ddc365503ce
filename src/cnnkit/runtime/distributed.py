"""Data-parallel training over several processes started by ``torchrun``.

torchrun starts one process per device and tells each its place in the environment
(``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, and ``MASTER_ADDR``/``MASTER_PORT`` of
the rendezvous); ``cnnkit train`` reads them, so it needs no flags of its own.
Processes talk through gloo on CPUs and NCCL on CUDA GPUs, and every collective
gives up after ``timeout_seconds``: a rank that hangs becomes an error, not a hang.

Each rank trains on its own slice of every global batch (``World.shard``) under
``DistributedDataParallel``, which averages the gradients of the slices: with equal
slices that is the gradient of the global batch, so the recipe's learning rate holds
unchanged for any number of ranks (docs/distributed.md).
"""

import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar, cast

import torch
from torch import distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from cnnkit.errors import CnnkitError, ConfigError, DistributedError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0  # 0 .. size - 1, over all machines
    size: int = 1
    local_rank: int = 0  # among the processes of this machine: its GPU index

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, metrics and reports, and prints."""
        return self.rank == 0

    def shard(self, count: int) -> slice:
        """This rank's contiguous part of ``count`` items; parts differ by at most one."""
        return slice(self.rank * count // self.size, (self.rank + 1) * count // self.size)


SINGLE = World()


def world_from_env(env: Mapping[str, str] = os.environ) -> World:
    """The ``World`` torchrun describes in ``env``; ``SINGLE`` outside torchrun."""
    if "WORLD_SIZE" not in env:
        return SINGLE
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    try:
        rank, size, local_rank = (int(env.get(name, "0")) for name in names)
    except ValueError:
        values = ", ".join(f"{name}={env.get(name)!r}" for name in names)
        raise ConfigError(f"the launcher's environment is not a rank: {values}") from None
    if not 0 <= rank < size:
        raise ConfigError(f"RANK={rank} does not lie in 0..WORLD_SIZE-1 ({size - 1})")
    return World(rank, size, local_rank)


@contextmanager
def process_group(world: World, device: torch.device, timeout_seconds: float) -> Iterator[None]:
    """Join the other ranks for the duration of the block (nothing for one process).

    A collective that fails, because a rank died or stopped answering for
    ``timeout_seconds``, becomes one ``DistributedError`` line naming this rank.
    """
    if world.size == 1:
        yield
        return
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(
        "nccl" if cuda else "gloo",
        rank=world.rank,
        world_size=world.size,
        timeout=timedelta(seconds=timeout_seconds),
        device_id=device if cuda else None,
    )
    try:
        yield
    except (dist.DistError, RuntimeError) as error:
        if not is_collective_failure(error):
            raise
        raise DistributedError(
            f"rank {world.rank} of {world.size}: lost the other processes "
            f"({collective_reason(error)}); one of them died or stopped answering "
            f"(--dist-timeout {timeout_seconds:g} s), see the launcher's report"
        ) from None
    finally:
        dist.destroy_process_group()


def is_collective_failure(error: Exception) -> bool:
    """Whether ``error`` says that a collective failed: NCCL and the store raise
    ``DistError``s; gloo a plain ``RuntimeError`` that names its own source file."""
    return isinstance(error, dist.DistError) or "gloo" in str(error)


def collective_reason(error: Exception) -> str:
    """The gist of a collective's error: its first sentence without gloo's
    ``[path/file.cc:123]`` prefix, e.g. "Read error [10.0.0.2]:41234: Connection reset
    by peer"."""
    text = re.sub(r"^\[[^\]]*\]\s*", "", str(error).strip())
    return text.split(". ")[0].splitlines()[0] if text else type(error).__name__


def data_parallel(model: nn.Module, world: World, device: torch.device) -> nn.Module:
    """``model`` wrapped to average its gradients over the ranks (itself for one).

    ``static_graph``: every step uses the same parameters, so DDP learns once which
    never get a gradient (GoogLeNet's auxiliary heads, used only by
    ``forward_with_aux``) instead of failing on them or searching for them each step.
    """
    if world.size == 1:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids, static_graph=True)


def all_reduce_sum(tensor: torch.Tensor, world: World) -> torch.Tensor:
    """``tensor`` summed over the ranks, in place (unchanged for one process)."""
    if world.size > 1:
        dist.all_reduce(tensor)
    return tensor


def broadcast_buffers(model: nn.Module, world: World) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics), the ones its
    checkpoint holds: each rank's last forward pass updated its own copy."""
    if world.size > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def from_main(world: World, compute: Callable[[], T]) -> T:
    """``compute()`` run on rank 0 only, and its value on every rank; a ``CnnkitError``
    that it raises is raised on every rank, so that all of them stop with its line."""
    if world.size == 1:
        return compute()
    outcome: list[object] = [None]
    if world.is_main:
        try:
            outcome = [compute()]
        except CnnkitError as error:
            outcome = [error]
    dist.broadcast_object_list(outcome, src=0)
    if isinstance(outcome[0], CnnkitError):
        raise outcome[0]
    return cast(T, outcome[0])


def gathered(world: World, value: T) -> list[T]:
    """Every rank's ``value``, in rank order; waits until every rank has given one."""
    if world.size == 1:
        return [value]
    values: list[object] = [None] * world.size
    dist.all_gather_object(values, value)
    return cast(list[T], values)
