"""The names of a run folder's files and of the folders runs go into, defined once."""

from pathlib import Path

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"  # one JSON object per finished epoch
RUNS_DIR = Path("runs")
MAX_NUMBERED_RUNS = 999


def default_run_dir(model: str, dataset: str, resume: bool, runs_dir: Path = RUNS_DIR) -> Path:
    """``runs/MODEL-DATASET``, or the next free ``runs/MODEL-DATASET-N`` so that no run
    is overwritten; with ``resume``, the latest one that holds a checkpoint."""
    base = runs_dir / f"{model}-{dataset}"
    candidates = [base] + [
        base.with_name(f"{base.name}-{n}") for n in range(2, MAX_NUMBERED_RUNS + 1)
    ]
    taken = [path for path in candidates if (path / CHECKPOINT_NAME).exists()]
    if resume:
        return taken[-1] if taken else base
    return next(path for path in candidates if path not in taken)
