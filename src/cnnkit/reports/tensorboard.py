"""Per-epoch scalars for TensorBoard, through PyTorch's standard ``SummaryWriter``.

Needs the ``[tensorboard]`` extra. Used as ``fit``'s ``on_epoch`` callback, so
the trainer itself knows nothing of TensorBoard.
"""

from pathlib import Path
from typing import TYPE_CHECKING

from cnnkit.errors import import_extra
from cnnkit.runs import EpochRecord

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

SCALARS = {  # EpochRecord's fields and their tags
    "train_loss": "loss/train",
    "test_loss": "loss/test",
    "train_top1_error": "error/train_top1",
    "test_top1_error": "error/test_top1",
    "test_top5_error": "error/test_top5",
    "lr": "lr",
    "images_per_second": "speed/images_per_second",
}


def summary_writer(log_dir: Path) -> "SummaryWriter":
    """A ``torch.utils.tensorboard.SummaryWriter`` writing into ``log_dir``."""
    import_extra("tensorboard", "tensorboard", "--tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(log_dir))


class EpochLogger:
    """Writes one epoch record (as ``fit`` passes it to ``on_epoch``) as scalars."""

    def __init__(self, log_dir: Path) -> None:
        self.writer = summary_writer(log_dir)

    def __call__(self, record: EpochRecord) -> None:
        for key, tag in SCALARS.items():
            self.writer.add_scalar(tag, getattr(record, key), global_step=record.epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
