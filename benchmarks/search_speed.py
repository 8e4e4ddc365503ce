"""Query speed of the exact backend and of FAISS at 10k, 100k and 1M vectors, and of the
index cnnkit tunes to a target recall against FAISS's HNSW at the same recall.

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

With ``--target-recall R`` (and ``--memory-budget MB``), at each size: the index that
``cnnkit index build --target-recall R`` builds over the stored vectors
(``search.tune.build_tuned``: the backend chosen and its search-time setting tuned on
rows of the collection held out as queries), its build time (tuning included) and
bytes; then, on the held-out queries (``--queries``, not in the collection): its
recall@10 and batched queries/s against the exact backend's and against FAISS's HNSW
as a user builds it (``IndexHNSWFlat``, M 32, FAISS's default efConstruction) with
efSearch raised to the least value at which it finds as much (the same recall or
more). Each batched figure in that comparison is the best of ``ROUNDS`` runs, on a
machine that others share.

    python benchmarks/search_speed.py /tmp/search-bench/train /tmp/search-bench/test
    python benchmarks/search_speed.py TRAIN TEST --sizes 1000000 --kinds hnsw \
        --target-recall 0.99
"""

import argparse
import math
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch

from cnnkit.search import open_index
from cnnkit.search.backends import AUTO, MB
from cnnkit.search.exact import exact_top_k
from cnnkit.search.faiss_backend import build_faiss, default_params, require_faiss
from cnnkit.search.tune import BackendChoice, build_tuned

SHARD = 16_384  # rows per shard, as an index stores them
BATCH = 1000
ROUNDS = 3  # batched runs in the target comparison, the best kept
HNSW_LINKS = 32  # the reference's M
EF_SEARCH = (10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224,
             256, 320, 384, 448, 512, 640, 768, 1024)  # fmt: skip


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


def best_throughput(search, queries: np.ndarray) -> tuple[float, np.ndarray]:
    """The best of ``ROUNDS`` batched runs: what the machine gives when others leave it."""
    runs = [throughput(search, queries) for _ in range(ROUNDS)]
    return max(qps for qps, _ in runs), runs[0][1]


def measure_size(real, queries, size, kinds, single, target, budget) -> None:
    shards = collection(real, size)
    exact_search = lambda q: exact_top_k(q, shards, 10)  # noqa: E731
    p50, p99 = latencies(exact_search, queries[:single])
    exact_qps, exact = throughput(exact_search, queries)
    row("exact", size, 0.0, size * real.shape[1] * 4, 1.0, p50, p99, exact_qps)
    for kind in kinds:
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
    if target is not None:
        compare_at_target(shards, queries, exact, target, budget)


def compare_at_target(shards, queries, exact, target: float, budget: float | None) -> None:
    """cnnkit's index tuned to ``target`` against exact search and FAISS's HNSW at the
    same recall, on the held-out ``queries`` (``exact``: their true 10 nearest)."""
    exact_qps, _ = best_throughput(lambda q: exact_top_k(q, shards, 10), queries)
    start = time.perf_counter()
    choice = BackendChoice(AUTO, target, None if budget is None else int(budget * MB))
    tuned = build_tuned(shards, choice)
    built = time.perf_counter() - start
    qps, found = best_throughput(lambda q: tuned.searcher.search(q, 10), queries)
    held_out = recall(found, exact)
    settings = " ".join(f"{k}={v}" for k, v in tuned.params.items())
    print(f"\ncnnkit --target-recall {target}" + (f" --memory-budget {budget:g}" if budget else "")
          + f": {tuned.backend.name} {settings}; built and tuned in {built:.1f} s, "
          f"{len(tuned.searcher.to_bytes()) / 2**20:,.0f} MiB; recall@10 "
          f"{tuned.recall_at_10:.4f} on the collection's held-out rows", flush=True)  # fmt: skip
    faiss = require_faiss()
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(shards[0].shape[1], HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
    for shard in shards:
        hnsw.add(np.ascontiguousarray(shard))
    hnsw_built = time.perf_counter() - start
    for ef in EF_SEARCH:
        settings = faiss.SearchParametersHNSW(efSearch=ef)
        hnsw_search = lambda q, s=settings: hnsw.search(q, 10, params=s)  # noqa: E731
        hnsw_qps, hnsw_found = best_throughput(hnsw_search, queries)
        hnsw_recall = recall(hnsw_found, exact)
        if hnsw_recall >= held_out:
            break
    hnsw_bytes = len(faiss.serialize_index(hnsw)) / 2**20
    print(
        f"FAISS HNSW M {HNSW_LINKS} efConstruction {hnsw.hnsw.efConstruction}: built in "
        f"{hnsw_built:.1f} s, {hnsw_bytes:,.0f} MiB; efSearch {ef} for the same recall"
    )
    print(f"{'held-out queries':28s} {'recall@10':>9s} {'batch q/s':>10s}")
    for name, rec, speed in (("exact", 1.0, exact_qps), ("cnnkit tuned", held_out, qps),
                             (f"FAISS HNSW efSearch {ef}", hnsw_recall, hnsw_qps)):  # fmt: skip
        print(f"{name:28s} {rec:9.4f} {speed:10,.0f}")
    print(
        f"recall@10 {held_out:.4f} >= {target}: {'yes' if held_out >= target else 'NO'}; "
        f"{qps / exact_qps:.1f}x exact (target 50x); {qps / hnsw_qps:.2f}x FAISS HNSW "
        f"at recall {hnsw_recall:.4f} (target 0.5x)",
        flush=True,
    )


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
    parser.add_argument("--target-recall", type=float, help="compare cnnkit's tuned index")
    parser.add_argument("--memory-budget", type=float, help="MB for the tuned index [no limit]")
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
    kinds = [kind for kind in args.kinds.split(",") if kind]
    for size in (int(s) for s in args.sizes.split(",")):
        measure_size(real, queries, size, kinds, args.single, args.target_recall,
                     args.memory_budget)  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"peak resident memory of this process: {peak:.2f} GiB")


if __name__ == "__main__":
    main()
