"""Retrieval quality, the acceptance tables of image search: mAP, mAP@100, P@1, P@10 and
recall@100 of raw pixels, HOG and a checkpoint's conv features (each also with PCA
whitening), one split's images as queries and another's as the collection, relevant =
same label; and whether the conv features' mAP is at least 0.2 above both others'.

    python benchmarks/search_quality.py /tmp/search-mnist-run mnist --png mnist.png
    python benchmarks/search_quality.py /tmp/search-cifar-flip-run folder:/tmp/cifar
"""

import argparse
import os
import time
from pathlib import Path

from cnnkit.search import EvalSettings, evaluate_retrieval
from cnnkit.search.retrieval import bar_chart_png

MARGIN = 0.2  # the target: conv mAP at least this much above pixels' and HOG's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("dataset")
    parser.add_argument("--query-limit", type=int, help="first N queries only [all]")
    parser.add_argument("--png", type=Path, help="also write the bar chart here")
    args = parser.parse_args()
    start = time.perf_counter()
    settings = EvalSettings(args.dataset, whiten=True, query_limit=args.query_limit)
    result = evaluate_retrieval(args.checkpoint, settings)
    print(f"{args.dataset}: {result.queries:,} {result.query_split} queries, "
          f"{result.collection:,} {result.collection_split} items; {args.checkpoint}; "
          f"{os.cpu_count()} cores, {time.perf_counter() - start:.0f} s")  # fmt: skip
    print("| method | dims | mAP | mAP@100 | P@1 | P@10 | recall@100 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m in result.methods:
        values = (m.map, m.map_at_100, m.p_at_1, m.p_at_10, m.recall_at_100)
        print(f"| {m.method} | {m.dimensions} | " + " | ".join(f"{v:.4f}" for v in values) + " |")
    by_name = {m.method: m.map for m in result.methods}
    gap = by_name["conv"] - max(by_name["pixels"], by_name["hog"])
    print(f"conv mAP - max(pixels, hog) = {gap:+.4f}: "
          f"{'meets' if gap >= MARGIN else 'misses'} the {MARGIN} margin")  # fmt: skip
    if args.png:
        print(f"wrote {bar_chart_png(result, args.png)}")


if __name__ == "__main__":
    main()
