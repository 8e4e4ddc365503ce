"""The run layer: a trained model and its typed record (``load_run``), the one reader
and writer of checkpoints, and the names of a run folder's files. Training writes
runs; every consumer reads them through here and never imports ``cnnkit.trainer``."""

from cnnkit.runs.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from cnnkit.runs.epochs import EpochRecord, read_metrics, write_metrics
from cnnkit.runs.folder import CHECKPOINT_NAME, METRICS_NAME, RUNS_DIR, default_run_dir
from cnnkit.runs.module import RunModule
from cnnkit.runs.record import RunRecord
from cnnkit.runs.run import FileImages, HeldImages, Run, load_run

__all__ = [
    "CHECKPOINT_NAME",
    "METRICS_NAME",
    "RUNS_DIR",
    "Checkpoint",
    "EpochRecord",
    "FileImages",
    "HeldImages",
    "Run",
    "RunModule",
    "RunRecord",
    "default_run_dir",
    "load_checkpoint",
    "load_run",
    "read_metrics",
    "save_checkpoint",
    "write_metrics",
]
