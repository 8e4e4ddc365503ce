"""The CPU levers for the speedrun net, one at a time: training images/s of its steps.

Each variant changes one thing from the base (the ``speedrun`` model, NCHW, fp32,
torch's default Adam, batches of 256, every core): memory format, bf16 autocast,
Adam's fused or per-parameter implementation, batch size, threads, torch.compile.
The variants run in turns (rounds of a few steps each), so that a busy spell slows
them alike; the median per variant and its ratio to the base are printed. For
torch.compile the seconds of its first step (the compile) are printed too: in a
one-epoch run they count. Run it under the CPU lock:

    flock /tmp/cnnkit-cpu.lock python benchmarks/train_speed_levers.py [--rounds 5]
"""

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from cnnkit.models import build_model


@dataclass(frozen=True)
class Variant:
    channels_last: bool = False
    bf16: bool = False
    adam: str = "default"  # torch's choice (foreach), "fused" or "for-loop"
    batch_size: int = 256
    threads: int | None = None  # None: torch's default, one per core
    compile: bool = False


VARIANTS = {
    "base (NCHW, fp32, foreach Adam, batch 256)": Variant(),
    "channels_last": Variant(channels_last=True),
    "bf16 autocast": Variant(bf16=True),
    "bf16 autocast + channels_last": Variant(bf16=True, channels_last=True),
    "fused Adam": Variant(adam="fused"),
    "for-loop Adam": Variant(adam="for-loop"),
    "batch 512": Variant(batch_size=512),
    "1 thread": Variant(threads=1),
    "torch.compile": Variant(compile=True),
}


def training_step(variant: Variant) -> tuple[Callable[[], None], float]:
    """One training step of the speedrun net on random data as ``variant`` says, and
    the seconds its first call took (the compile, for torch.compile)."""
    torch.manual_seed(0)
    model = build_model("speedrun")
    fmt = torch.channels_last if variant.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)  # type: ignore[call-overload]
    x = torch.randn(variant.batch_size, 1, 28, 28).contiguous(memory_format=fmt)
    labels = torch.randint(0, 10, (variant.batch_size,))
    implementation = {"fused": {"fused": True}, "for-loop": {"foreach": False}}
    optimizer = torch.optim.Adam(
        model.parameters(), lr=1e-3, betas=(0.7, 0.9), **implementation.get(variant.adam, {})
    )
    network = torch.compile(model) if variant.compile else model

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant.bf16):
            loss = F.cross_entropy(network(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    step()
    return step, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=6, help="steps per variant per round")
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()
    chosen = {k: v for k, v in VARIANTS.items() if not (v.compile and args.skip_compile)}
    steps, first = {}, {}
    for name, variant in chosen.items():
        steps[name], first[name] = training_step(variant)
        steps[name]()  # oneDNN's primitives made, caches warm
    rates: dict[str, list[float]] = {name: [] for name in chosen}
    for _ in range(args.rounds):
        for name, variant in chosen.items():
            torch.set_num_threads(variant.threads or default_threads)
            start = time.perf_counter()
            for _ in range(args.steps):
                steps[name]()
            rates[name].append(args.steps * variant.batch_size / (time.perf_counter() - start))
        torch.set_num_threads(default_threads)
    base = statistics.median(next(iter(rates.values())))
    print(f"{default_threads} threads by default; median of {args.rounds} rounds")
    for name, variant in chosen.items():
        rate = statistics.median(rates[name])
        compiled = f"  first step {first[name]:.1f} s" if variant.compile else ""
        print(f"{name:44s} {rate:7,.0f} img/s  {rate / base:.2f}x{compiled}", flush=True)


if __name__ == "__main__":
    main()
