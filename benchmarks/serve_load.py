"""A bounded load test of ``cnnkit serve`` on loopback: real MNIST PNGs against a LeNet-5 run.

For each server configuration (micro-batching on, batch size 1, and batching with a
small queue under 128 clients that retry a 503 at once or after its Retry-After), it
starts ``cnnkit serve CHECKPOINT`` on a free port, warms it up, and sends a fixed
number of multipart POST /v1/predict requests from 1, 8, 32 and 128 concurrent
keep-alive clients (each sends its next request when the last is answered),
then stops the server with SIGTERM and checks it exits 0. Per run it prints the
throughput, p50/p90/p99 latency (of all answers and of the 200s), the answers by status,
the server's mean batch size (from its /metrics) and the RSS of its two processes
before and after.

``--hostile ROUNDS`` measures instead what a hostile client costs the others: one
server, 32 clients as above, and rounds with and without a second client that sends,
every second, one request of 16 JPEGs of a few hundred bytes whose headers each claim
9,000 x 9,000 pixels (built here: a real 16x16 JPEG with its frame header rewritten).
The rounds alternate (without, with, without, ...), so that the machine's drift falls
on both; it prints the 32 clients' p99 without and with, their ratio, and the hostile
requests' answers.

``--explain ROUNDS`` measures what an explanation costs beside a prediction: one server
(batching on), and rounds of POST /v1/predict and of POST /v1/explain (every layer's
maps, Grad-CAM, saliency and the novelty verdict: what the page asks for when a stroke
ends) from 1, 8 and 32 clients, the two routes alternated so that the machine's drift
falls on both; it prints each route's p50 and p99 and the ratio of the p50s.

The client is one asyncio process speaking HTTP/1.1 on raw sockets (a prebuilt request
per digit, the answer's status and Content-Length parsed, nothing more), so that it
costs the two cores little; a run that does not finish within its deadline is reported
as a hang. Usage:

    cnnkit train --out runs/lenet5-mnist            # the default LeNet-5 run
    python benchmarks/serve_load.py runs/lenet5-mnist/checkpoint.pt
    python benchmarks/serve_load.py runs/lenet5-mnist/checkpoint.pt --hostile 3
    python benchmarks/serve_load.py runs/lenet5-mnist/checkpoint.pt --explain 3
"""

import argparse
import asyncio
import io
import json
import os
import platform
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tabulate import tabulate

BOUNDARY = "cnnkit-load-boundary"
DIGITS = 100  # distinct real MNIST test digits, sent in turn
WARM_UP = 500
DEADLINE_S = 180  # a run that takes longer is a hang
HOSTILE_CLIENTS = 32  # the clients whose latency a hostile client must not change
HOSTILE_REQUESTS = 10_000  # theirs per round
HOSTILE_IMAGES = 16  # JPEGs in one hostile request
HOSTILE_SIDE = 9_000  # pixels each claims, on either side: under one image's limit
HOSTILE_PERIOD_S = 1.0
EXPLAIN_ROUTES = {"predict": "/v1/predict", "explain": "/v1/explain"}
EXPLAIN_REQUESTS = {1: 1_000, 8: 2_000, 32: 4_000}  # per route, clients and round


@dataclass(frozen=True)
class Config:
    options: list[str]  # cnnkit serve's
    requests: dict[int, int]  # requests sent by so many concurrent clients
    backs_off: bool = False  # clients wait a 503's Retry-After before their next request


# The 20,000 batched requests at 32 clients are the RSS-growth run; batch size 1 gets
# fewer requests (it is slower), enough for a steady rate. The whole run takes about
# three minutes on 2 cores.
CONFIGS = {
    "batched": Config([], {1: 2_000, 8: 5_000, 32: 20_000, 128: 10_000}),
    "batch size 1": Config(["--max-batch", "1"], {1: 1_000, 8: 2_000, 32: 5_000, 128: 5_000}),
    # The overload case: clients that retry at once (the worst case), and clients that
    # wait the Retry-After: 1 s a 503 asks for, as an HTTP client library would.
    "queue 16, retry at once": Config(["--max-queue", "16"], {128: 10_000}),
    "queue 16, Retry-After": Config(["--max-queue", "16"], {128: 10_000}, backs_off=True),
}


def stop(server: subprocess.Popen, log) -> None:
    """SIGTERM the server, wait for its drain, and show its log's end if it failed."""
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    if server.returncode != 0:
        log.seek(0)
        print(log.read().decode(errors="replace")[-3000:], file=sys.stderr)


def digit_requests(port: int, path: str = "/v1/predict") -> list[bytes]:
    """Complete HTTP requests to ``path``, one per real MNIST test digit as a PNG upload."""
    from cnnkit.data import load_dataset

    _, test = load_dataset("mnist")
    requests = []
    for index in range(DIGITS):
        buffer = io.BytesIO()
        Image.fromarray(test.images[index, 0].numpy()).save(buffer, format="PNG")
        body = (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
                f'filename="{index}.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            + buffer.getvalue()
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        requests.append(head + body)
    return requests


@dataclass
class Tally:
    remaining: int
    latencies: list[tuple[int, float]] = field(default_factory=list)  # (status, seconds)
    errors: Counter = field(default_factory=Counter)
    next_request: int = 0


class Client(asyncio.Protocol):
    """One keep-alive connection sending requests one after the other; after a 503 it
    waits the answer's Retry-After seconds first when it ``backs_off``."""

    def __init__(
        self, requests: list[bytes], tally: Tally, done: asyncio.Future, backs_off: bool
    ) -> None:
        self.requests, self.tally, self.done = requests, tally, done
        self.backs_off = backs_off
        self.buffer = b""
        self.started = 0.0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.send_next()

    def send_next(self) -> None:
        if self.tally.remaining <= 0:
            self.transport.close()
            return
        self.tally.remaining -= 1
        request = self.requests[self.tally.next_request % len(self.requests)]
        self.tally.next_request += 1
        self.started = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end].decode("latin-1")
        length = int(re.search(r"(?im)^content-length:\s*(\d+)", head).group(1))
        if len(self.buffer) < head_end + 4 + length:
            return
        status = int(head.split(" ", 2)[1])
        self.tally.latencies.append((status, time.perf_counter() - self.started))
        self.buffer = self.buffer[head_end + 4 + length :]
        retry_after = re.search(r"(?im)^retry-after:\s*(\d+)", head)
        if re.search(r"(?im)^connection:\s*close", head):
            self.transport.close()
        elif status == 503 and retry_after and self.backs_off:
            asyncio.get_running_loop().call_later(int(retry_after.group(1)), self.send_next)
        else:
            self.send_next()

    def connection_lost(self, error) -> None:
        if self.started and self.buffer:
            self.tally.errors["connection lost mid-answer"] += 1
        if not self.done.done():
            self.done.set_result(None)


async def load(
    port: int, requests: list[bytes], clients: int, count: int, backs_off: bool = False
) -> tuple[Tally, float]:
    tally = Tally(remaining=count)
    loop = asyncio.get_running_loop()
    done = [loop.create_future() for _ in range(clients)]
    started = time.perf_counter()
    for future in done:
        await loop.create_connection(
            lambda future=future: Client(requests, tally, future, backs_off), "127.0.0.1", port
        )
    await asyncio.wait_for(asyncio.gather(*done), DEADLINE_S)
    return tally, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def rss_mib(pid: int) -> float:
    """The resident memory of ``pid`` and its children (the model process), in MiB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for p in pids:
        status = Path(f"/proc/{p}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    return total / 1024


def batches(url: str) -> tuple[float, float]:
    """(images, batches) predicted so far, from the server's /metrics."""
    text = urllib.request.urlopen(url + "/metrics", timeout=10).read().decode()
    values = dict(
        re.findall(r'^cnnkit_batch_size_(sum|count)\{kind="predict"\} (\S+)$', text, re.M)
    )
    return float(values.get("sum", 0)), float(values.get("count", 0))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(checkpoint: Path, port: int, options: list[str], log) -> subprocess.Popen:
    command = [sys.executable, "-m", "cnnkit", "serve", str(checkpoint), "--port", str(port)]
    process = subprocess.Popen([*command, *options], stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
            return process
        except OSError:
            if process.poll() is not None:
                sys.exit(f"cnnkit serve exited with status {process.returncode}")
            time.sleep(0.2)
    sys.exit("cnnkit serve did not get ready in 120 s")


def run_config(checkpoint: Path, name: str, config: Config) -> list[dict]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    requests = digit_requests(port)
    log = tempfile.TemporaryFile()  # the server's stderr: read only if it fails
    server = start_server(checkpoint, port, config.options, log)
    rows = []
    try:
        run(load(port, requests, 8, WARM_UP))
        for count, total in config.requests.items():
            rss_before, (images0, batches0) = rss_mib(server.pid), batches(url)
            try:
                tally, seconds = run(load(port, requests, count, total, config.backs_off))
            except asyncio.TimeoutError:
                rows.append({"config": name, "clients": count, "hang": True})
                continue
            images1, batches1 = batches(url)
            all_latencies = [s for _, s in tally.latencies]
            ok = [s for status, s in tally.latencies if status == 200]
            statuses = Counter(status for status, _ in tally.latencies) + tally.errors
            rows.append(
                {
                    "config": name,
                    "clients": count,
                    "requests": len(tally.latencies),
                    "seconds": seconds,
                    "predictions_per_s": len(ok) / seconds,
                    "p50_ms": 1000 * percentile(all_latencies, 50),
                    "p90_ms": 1000 * percentile(all_latencies, 90),
                    "p99_ms": 1000 * percentile(all_latencies, 99),
                    "ok_p99_ms": 1000 * percentile(ok, 99),
                    "ok_mean_ms": 1000 * statistics.fmean(ok) if ok else float("nan"),
                    "statuses": dict(sorted(statuses.items(), key=str)),
                    "mean_batch": (images1 - images0) / max(1.0, batches1 - batches0),
                    "rss_before_mib": rss_before,
                    "rss_after_mib": rss_mib(server.pid),
                }
            )
    finally:
        stop(server, log)
    for row in rows:
        row["exit"] = server.returncode
    return rows


def run(coroutine):
    """``coroutine`` on uvloop when it is there (the serve extra), the client's own cost
    then a third lower."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coroutine)


def claiming_jpeg(side: int) -> bytes:
    """A real 16x16 JPEG whose frame header (SOF0) claims ``side`` x ``side`` pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (250, 250, 250)).save(buffer, "JPEG", quality=75)
    data = bytearray(buffer.getvalue())
    start = data.find(b"\xff\xc0")  # marker, length (2 bytes), precision (1), height, width
    struct.pack_into(">HH", data, start + 5, side, side)
    return bytes(data)


def hostile_request(port: int) -> bytes:
    """One POST /v1/predict of HOSTILE_IMAGES claiming JPEGs, as a complete request."""
    jpeg = claiming_jpeg(HOSTILE_SIDE)
    parts = [
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; '
            f'filename="{n}.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        + jpeg
        + b"\r\n"
        for n in range(HOSTILE_IMAGES)
    ]
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def hostile_client(port: int, statuses: Counter, stop: asyncio.Event) -> None:
    """Send the hostile request every HOSTILE_PERIOD_S (or as soon as the last was
    answered, if that took longer) until ``stop``; count the answers' statuses."""
    request = hostile_request(port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            length = int(re.search(r"(?im)^content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            statuses[int(head.split(" ", 2)[1])] += 1
            if re.search(r"(?im)^connection:\s*close", head):
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            wait = HOSTILE_PERIOD_S - (time.perf_counter() - started)
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, wait))
            except asyncio.TimeoutError:
                pass
    finally:
        writer.close()


async def load_beside(port: int, requests: list[bytes], hostile: Counter | None) -> Tally:
    """One round of the 32 clients' load, beside the hostile client when ``hostile``
    (which counts its answers)."""
    stop = asyncio.Event()
    task = None
    if hostile is not None:
        task = asyncio.ensure_future(hostile_client(port, hostile, stop))
    try:
        tally, _ = await load(port, requests, HOSTILE_CLIENTS, HOSTILE_REQUESTS)
    finally:
        stop.set()
        if task is not None:
            await task
    return tally


def run_hostile(checkpoint: Path, rounds: int) -> dict:
    """The 32 clients' latencies in alternated rounds without and with the hostile
    client, on one server; the hostile requests' answers."""
    port = free_port()
    requests = digit_requests(port)
    log = tempfile.TemporaryFile()
    server = start_server(checkpoint, port, [], log)
    latencies: dict[str, list[float]] = {"without": [], "with": []}
    statuses: dict[str, Counter] = {"without": Counter(), "with": Counter()}
    hostile: Counter = Counter()
    hung = None  # the condition whose round did not finish within the deadline
    try:
        run(load(port, requests, 8, WARM_UP))
        for name in ("without", "with") * rounds:
            try:
                tally = run(load_beside(port, requests, hostile if name == "with" else None))
            except asyncio.TimeoutError:
                hung = name
                break
            latencies[name] += [seconds for _, seconds in tally.latencies]
            statuses[name] += Counter(status for status, _ in tally.latencies) + tally.errors
    finally:
        stop(server, log)
    p99 = {name: 1000 * percentile(values, 99) for name, values in latencies.items()}
    return {
        "p99_ms": p99,
        "statuses": statuses,
        "hostile": hostile,
        "hung": hung,
        "exit": server.returncode,
    }


def run_explain(checkpoint: Path, rounds: int) -> dict:
    """The latencies of /v1/predict and /v1/explain by client count, in alternated
    rounds on one server."""
    port = free_port()
    requests = {route: digit_requests(port, path) for route, path in EXPLAIN_ROUTES.items()}
    log = tempfile.TemporaryFile()
    server = start_server(checkpoint, port, [], log)
    latencies: dict[tuple[str, int], list[float]] = {}
    statuses: Counter = Counter()
    hung = None  # the (route, clients) whose round did not finish within the deadline
    try:
        for route in EXPLAIN_ROUTES:
            run(load(port, requests[route], 8, WARM_UP))
        plan = [(c, r) for _ in range(rounds) for c in EXPLAIN_REQUESTS for r in EXPLAIN_ROUTES]
        for clients, route in plan:
            try:
                tally, _ = run(load(port, requests[route], clients, EXPLAIN_REQUESTS[clients]))
            except asyncio.TimeoutError:
                hung = (route, clients)
                break
            ok = [seconds for status, seconds in tally.latencies if status == 200]
            latencies.setdefault((route, clients), []).extend(ok)
            statuses += Counter(f"{route} {status}" for status, _ in tally.latencies)
            statuses += tally.errors
    finally:
        stop(server, log)
    return {"latencies": latencies, "statuses": statuses, "hung": hung, "exit": server.returncode}


def print_explain(result: dict, rounds: int, load_before: float) -> None:
    print(f"machine: {machine()}")
    print(f"load average (1 min) before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f}")
    print(f"command: python {' '.join(sys.argv)}")
    print(f"{rounds} rounds; per round, route and client count: {EXPLAIN_REQUESTS} requests")
    table = []
    for clients in EXPLAIN_REQUESTS:
        predict = result["latencies"].get(("predict", clients), [])
        explain = result["latencies"].get(("explain", clients), [])
        p50 = [1000 * percentile(values, 50) for values in (predict, explain)]
        p99 = [1000 * percentile(values, 99) for values in (predict, explain)]
        table.append(
            [clients, len(explain), f"{p50[0]:.2f}", f"{p50[1]:.2f}", f"{p50[1] / p50[0]:.2f}"]
            + [f"{p99[0]:.2f}", f"{p99[1]:.2f}"]
        )
    headers = [
        "clients", "explains", "predict p50 ms", "explain p50 ms", "explain / predict p50",
        "predict p99 ms", "explain p99 ms",
    ]  # fmt: skip
    print(tabulate(table, headers=headers, tablefmt="github"))
    answers = " ".join(f"{k}:{v}" for k, v in sorted(result["statuses"].items()))
    print(f"answers: {answers}; server exit {result['exit']}")
    if result["hung"]:
        route, clients = result["hung"]
        print(f"HANG: {route} from {clients} clients took over {DEADLINE_S} s")


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line),
        platform.processor(),
    )
    import torch

    return (
        f"{model}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"torch {torch.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a LeNet-5 run's checkpoint.pt")
    parser.add_argument("--json", type=Path, help="also write the rows here as JSON")
    parser.add_argument(
        "--only", choices=CONFIGS, action="append", help="run this configuration only [all]"
    )
    parser.add_argument(
        "--hostile",
        type=int,
        metavar="ROUNDS",
        help="instead: ROUNDS rounds each without and with a hostile client, alternated",
    )
    parser.add_argument(
        "--explain",
        type=int,
        metavar="ROUNDS",
        help="instead: ROUNDS rounds of /v1/predict and /v1/explain, alternated",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure
    if args.explain:
        print_explain(run_explain(args.checkpoint, args.explain), args.explain, load_before)
        return
    if args.hostile:
        print_hostile(run_hostile(args.checkpoint, args.hostile), args.hostile, load_before)
        return
    rows = []
    for name in args.only or CONFIGS:
        rows += run_config(args.checkpoint, name, CONFIGS[name])
    print(f"machine: {machine()}")
    print(f"load average (1 min) before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f}")
    print(f"command: python {' '.join(sys.argv)}")
    table = [
        [
            r["config"],
            r["clients"],
            "HANG" if r.get("hang") else f"{r['requests']:,}",
            *(
                ["", "", "", "", "", "", "", "", ""]
                if r.get("hang")
                else [
                    f"{r['predictions_per_s']:,.0f}",
                    f"{r['p50_ms']:.1f}",
                    f"{r['p90_ms']:.1f}",
                    f"{r['p99_ms']:.1f}",
                    f"{r['ok_p99_ms']:.1f}",
                    " ".join(f"{k}:{v}" for k, v in r["statuses"].items()),
                    f"{r['mean_batch']:.1f}",
                    f"{r['rss_before_mib']:.0f} -> {r['rss_after_mib']:.0f}",
                    r["exit"],
                ]
            ),
        ]
        for r in rows
    ]
    headers = [
        "server", "clients", "requests", "predictions/s", "p50 ms", "p90 ms", "p99 ms",
        "200s p99 ms", "answers", "mean batch", "RSS MiB", "exit",
    ]  # fmt: skip
    print(tabulate(table, headers=headers, tablefmt="github"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def print_hostile(result: dict, rounds: int, load_before: float) -> None:
    without, with_hostile = result["p99_ms"]["without"], result["p99_ms"]["with"]
    print(f"machine: {machine()}")
    print(f"load average (1 min) before: {load_before:.2f}, after: {os.getloadavg()[0]:.2f}")
    print(f"command: python {' '.join(sys.argv)}")
    print(
        f"{HOSTILE_CLIENTS} clients, {rounds} rounds of {HOSTILE_REQUESTS:,} requests without "
        f"and with a client sending {HOSTILE_IMAGES} JPEGs that each claim "
        f"{HOSTILE_SIDE:,} x {HOSTILE_SIDE:,} pixels every {HOSTILE_PERIOD_S:g} s, alternated"
    )
    for name in ("without", "with"):
        answers = " ".join(f"{k}:{v}" for k, v in sorted(result["statuses"][name].items(), key=str))
        print(f"  {name + ':':9} p99 {result['p99_ms'][name]:.1f} ms ({answers})")
    if result["hung"]:
        print(f"  HANG: a round {result['hung']} the hostile client took over {DEADLINE_S} s")
    print(f"  ratio with / without: {with_hostile / without:.3f}")
    hostile = " ".join(f"{k}:{v}" for k, v in sorted(result["hostile"].items()))
    print(f"  the hostile client's answers: {hostile}; server exit {result['exit']}")


if __name__ == "__main__":
    main()
