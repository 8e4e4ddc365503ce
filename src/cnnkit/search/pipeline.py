"""A build's batches, read and embedded: one DataLoader over every batch the build
embeds, whatever shard it belongs to, so its worker processes start once.

Files are read by the run layer (``Run.read_files``: the one decoder, then the
preparation the model's training images had, a whole batch stacked into one uint8
tensor); a data set's images are taken from its tensor. On a CPU each worker then
embeds its own batch too (``Embedder``), on one thread (``runtime.workers``), so that
decoding and the forward passes of several batches run side by side, one process a
core, with no threads waiting on each other; the main process only collects the small
results and writes the shards (docs/search.md, "Embedding throughput"). On a GPU the
workers only read, and the main process embeds. Either way each batch is embedded by
itself, and batches are cut the same way in every build (``build.build_batches``).

A file that cannot be decoded is left out and named in the result, as the folder
loader does in training.
"""

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from cnnkit.runs import Run
from cnnkit.runtime.memory import keep_freed_memory
from cnnkit.runtime.workers import init_worker
from cnnkit.search.collection import Collection, Record
from cnnkit.search.embed import Embedder, Embedding


@dataclass(frozen=True)
class Planned:
    """One batch of a build: items of shard ``shard``, cut the same way in every build."""

    shard: int
    records: list[Record]


@dataclass(frozen=True)
class Embedded:
    shard: int
    records: list[Record]  # the items read, in order
    embedding: Embedding | None  # of ``records``; None until embedded, or none was read
    problems: list[str]  # files that could not be read
    images: torch.Tensor | None = None  # uint8 (N, C, H, W), for the main process to embed


class PlannedBatches(Dataset):
    """Item i: batch i of ``plan`` read, and embedded where ``embedder`` is given."""

    def __init__(
        self, run: Run, collection: Collection, plan: list[Planned], embedder: Embedder | None
    ) -> None:
        self.run, self.collection, self.plan, self.embedder = run, collection, plan, embedder

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, i: int) -> Embedded:
        planned = self.plan[i]
        records, problems = planned.records, []
        if self.collection.images is not None:
            images = self.collection.images[torch.tensor([r.index for r in records])]
        else:
            files = self.run.read_files([Path(str(record.path)) for record in records])
            records, images = [records[k] for k in files.read], files.images
            problems = files.problems
        if self.embedder is None or not records:
            return Embedded(planned.shard, records, None, problems, images)
        return Embedded(planned.shard, records, self.embedder(images), problems)


def embedded_batches(
    run: Run, collection: Collection, plan: list[Planned], embedder: Embedder, workers: int
) -> Iterator[Embedded]:
    """The batches of ``plan`` in order, each read and embedded (``workers`` processes;
    0: all in this one)."""
    workers = min(workers, len(plan))
    in_workers = workers > 0 and run.placement.device.type == "cpu"
    batches = PlannedBatches(run, collection, plan, embedder if in_workers else None)
    keep_freed_memory()  # here and in the workers (forked or started)
    loader = DataLoader(
        batches,
        batch_size=None,  # each item is a batch already
        num_workers=workers,
        worker_init_fn=init_worker,
        prefetch_factor=4 if workers else None,
    )
    for batch in loader:
        if batch.embedding is None and batch.records and batch.images is not None:
            batch = replace(batch, embedding=embedder(batch.images), images=None)
        yield batch
