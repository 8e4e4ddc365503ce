"""Query speed of the exact backend and of FAISS at 10k, 100k and 1M vectors.

The vectors are a real model's features, read from a cnnkit index (the CIFAR-10
training photos through ResNet-8: 50,000 real 64-dimensional vectors); collections
larger than that are filled up with jittered copies of the real vectors (each real
vector plus Gaussian noise of half its dimension's spread, L2-normalised again), so
that they keep the real vectors' clusters. Queries are real features of other photos
(``--queries INDEX``, e.g. the CIFAR-10 test photos), not in the collection.

Per size and backend: build seconds, bytes per million vectors, recall@10 against
exact search, one query's latency (p50, p99 over ``--single`` queries) and batched
throughput (one batch of 1,000 queries). At 1M, FAISS IVF's ``nprobe`` is raised
(1, 2, 4, ...) to the first value with recall@10 >= 0.95, and its batched speed-up
over exact search printed.

    python benchmarks/search_speed.py /tmp/search-bench/train /tmp/search-bench/test
"""

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from cnnkit.search import open_index
from cnnkit.search.exact import exact_top_k
from cnnkit.search.faiss_backend import build_faiss, default_params, require_faiss

SHARD = 16_384  # rows per shard, as an index stores them
BATCH = 1000


def collection(real: np.ndarray, size: int, seed: int = 0) -> list[np.ndarray]:
    """``size`` vectors: the real ones first, then jittered copies, as shards."""
    rng = np.random.default_rng(seed)
    spread = real.std(axis=0)
    parts, total = [real[:size]], min(size, len(real))
    while total < size:
        take = min(len(real), size - total)
        noisy = real[rng.integers(0, len(real), take)] + 0.5 * spread * rng.standard_normal(
            (take, real.shape[1]), dtype=np.float32
        )
        parts.append(noisy / np.linalg.norm(noisy, axis=1, keepdims=True))
        total += take
    vectors = np.concatenate(parts).astype(np.float32)
    return [vectors[i : i + SHARD] for i in range(0, size, SHARD)]


def latencies(search, queries: np.ndarray) -> tuple[float, float]:
    """p50 and p99 in milliseconds of one query at a time."""
    times = []
    for query in queries:
        start = time.perf_counter()
        search(query[None])
        times.append(1000 * (time.perf_counter() - start))
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def throughput(search, queries: np.ndarray) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    _, positions = search(queries)
    return len(queries) / (time.perf_counter() - start), positions


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)]))


def row(name, size, build_s, bytes_, rec, p50, p99, qps):
    per_million = bytes_ / size * 1e6 / 2**20
    print(f"{name:14s} {size:>9,} {build_s:8.1f} {per_million:10,.0f} {rec:8.3f} "
          f"{p50:9.2f} {p99:9.2f} {qps:11,.0f}", flush=True)  # fmt: skip


def measure_size(real, queries, size, kinds, single) -> None:
    shards = collection(real, size)
    exact_search = lambda q: exact_top_k(q, shards, 10)  # noqa: E731
    p50, p99 = latencies(exact_search, queries[:single])
    exact_qps, exact = throughput(exact_search, queries)
    row("exact", size, 0.0, size * real.shape[1] * 4, 1.0, p50, p99, exact_qps)
    for kind in kinds:
        if kind == "hnsw" and size > 200_000:
            continue  # hours of graph building on two cores
        params = default_params(kind, size, real.shape[1])
        start = time.perf_counter()
        index = build_faiss(kind, shards, params)
        built = time.perf_counter() - start
        search = lambda q, index=index: index.search(q, 10)  # noqa: E731
        p50, p99 = latencies(search, queries[:single])
        qps, found = throughput(search, queries)
        label = kind + "".join(f" {k[0]}{v}" for k, v in params.items() if k in ("nprobe",))
        row(label, size, built, len(index.to_bytes()), recall(found, exact), p50, p99, qps)
        if kind == "ivf" and size >= 1_000_000:
            speed_up_at_recall(index, queries, exact, exact_qps)


def speed_up_at_recall(index, queries, exact, qps_exact: float, target: float = 0.95) -> None:
    """IVF's batched speed-up over exact search at the smallest nprobe (of a doubling
    series) whose recall@10 is still >= ``target``."""
    nlist = index.params["nlist"]
    best = None
    for nprobe in [2**i for i in range(int(math.log2(nlist)) + 1)]:
        index.params = {**index.params, "nprobe": nprobe}
        qps, found = throughput(lambda q: index.search(q, 10), queries)
        rec = recall(found, exact)
        print(f"  ivf nlist {nlist} nprobe {nprobe:5d}: recall@10 {rec:.3f}, {qps:10,.0f} q/s")
        if rec >= target:
            best = (nprobe, rec, qps)
            break
    if best:
        nprobe, rec, qps = best
        print(f"ivf at recall@10 >= {target}: nprobe {nprobe}, recall {rec:.3f}, {qps:,.0f} q/s"
              f" = {qps / qps_exact:.1f}x exact ({qps_exact:,.0f} q/s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, help="a cnnkit index whose vectors are the collection")
    parser.add_argument("queries", type=Path, help="a cnnkit index whose vectors are the queries")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--kinds", default="flat,ivf,hnsw,ivfpq")
    parser.add_argument("--single", type=int, default=200, help="queries timed one by one")
    args = parser.parse_args()
    require_faiss()
    real = np.concatenate([np.asarray(v, np.float32) for v in open_index(args.index).vectors])
    queries = np.concatenate([np.asarray(v, np.float32) for v in open_index(args.queries).vectors])
    queries = queries[:BATCH]
    print(f"{len(real):,} real {real.shape[1]}-d vectors, {len(queries):,} queries; "
          f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, "
          f"faiss {require_faiss().__version__}")  # fmt: skip
    print(f"{'backend':14s} {'vectors':>9s} {'build s':>8s} {'MiB/1M':>10s} {'rec@10':>8s} "
          f"{'p50 ms':>9s} {'p99 ms':>9s} {'batch q/s':>11s}")  # fmt: skip
    for size in (int(s) for s in args.sizes.split(",")):
        measure_size(real, queries, size, args.kinds.split(","), args.single)


if __name__ == "__main__":
    main()
