"""The server's counters and histograms, rendered in Prometheus's text format (0.0.4).

Written by hand (a few dozen lines) rather than with prometheus_client, whose default
registry is global to the process: each app owns its ``Metrics``, so that tests and
several apps in one process never share counts. Only the event loop writes here (the
middleware and the batcher's task), so no lock is needed.
"""

import bisect
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# Request latency buckets in seconds: the page's drawing needs tens of milliseconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

Labels = tuple[tuple[str, str], ...]


@dataclass
class Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; + one for +Inf
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value


@dataclass
class Metrics:
    requests: dict[Labels, int] = field(default_factory=lambda: defaultdict(int))
    latency: dict[Labels, Histogram] = field(default_factory=dict)
    batches: dict[Labels, Histogram] = field(default_factory=dict)
    model_seconds: dict[Labels, float] = field(default_factory=lambda: defaultdict(float))
    queue_depth: Callable[[], int] = lambda: 0
    # Items not computed because their request had gone, by (kind, stage) (the batcher's).
    dropped: Callable[[], Mapping[tuple[str, str], int]] = lambda: {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (("route", route), ("method", method), ("status", str(status)))
        self.requests[labels] += 1
        self.latency.setdefault(labels, Histogram(LATENCY_BUCKETS)).observe(seconds)

    def observe_batch(self, kind: str, size: int, seconds: float) -> None:
        labels = (("kind", kind),)
        self.batches.setdefault(labels, Histogram(BATCH_BUCKETS)).observe(size)
        self.model_seconds[labels] += seconds

    def render(self) -> str:
        """All series in Prometheus's text exposition format."""
        lines = [
            *_family("cnnkit_requests_total", "counter", "HTTP requests answered."),
            *(_sample("cnnkit_requests_total", k, v) for k, v in sorted(self.requests.items())),
            *_histograms(
                "cnnkit_request_duration_seconds", "Time to answer a request.", self.latency
            ),
            *_histograms("cnnkit_batch_size", "Images per forward pass.", self.batches),
            *_family("cnnkit_model_seconds_total", "counter", "Time spent in the model."),
            *(
                _sample("cnnkit_model_seconds_total", k, v)
                for k, v in sorted(self.model_seconds.items())
            ),
            *_family("cnnkit_queue_depth", "gauge", "Images waiting for the model."),
            _sample("cnnkit_queue_depth", (), self.queue_depth()),
            *_family(
                "cnnkit_dropped_items_total",
                "counter",
                "Items not computed because their request had gone (timed out or "
                "disconnected): stage queue before a batch took them, model after.",
            ),
            *(
                _sample("cnnkit_dropped_items_total", (("kind", kind), ("stage", stage)), count)
                for (kind, stage), count in sorted(self.dropped().items())
            ),
        ]
        return "\n".join(lines) + "\n"


def milliseconds_since(started: float) -> float:
    """Milliseconds since ``time.perf_counter()`` was ``started``, as answers show them."""
    return round(1000 * (time.perf_counter() - started), 3)


def _family(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _sample(name: str, labels: Labels, value: float) -> str:
    shown = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
    return f"{name}{{{shown}}} {value:g}" if shown else f"{name} {value:g}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _histograms(name: str, help_text: str, series: dict[Labels, Histogram]) -> list[str]:
    lines = _family(name, "histogram", help_text)
    for labels, histogram in sorted(series.items()):
        cumulative = 0
        for bound, count in zip((*histogram.buckets, float("inf")), histogram.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(_sample(f"{name}_bucket", (*labels, ("le", le)), cumulative))
        lines.append(_sample(f"{name}_sum", labels, histogram.total))
        lines.append(_sample(f"{name}_count", labels, cumulative))
    return lines
