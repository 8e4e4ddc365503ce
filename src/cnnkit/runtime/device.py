"""Where a model computes, in training and inference, and in which precision: device,
autocast dtype, memory format.

``--device auto`` takes a CUDA GPU when PyTorch sees one, else Apple's MPS, else the
CPU. ``--precision`` sets the dtype that ``torch.autocast`` runs matrix products and
convolutions in; weights, optimiser state and the loss stay float32 (mixed precision,
Micikevicius et al. 2018). bf16 keeps float32's exponent range and needs no loss
scaling; fp16 does, and gets ``torch.amp.GradScaler``. Conv nets run channels_last
on CUDA (NHWC, the layout cuDNN's tensor-core kernels read); on a CPU a placement keeps
the layout as it is, and training chooses its own (``trainer.fit.training_placement``:
channels_last but for nets with response normalisation, docs/speedrun.md).
"""

import copy
from dataclasses import dataclass
from typing import TypeVar

import torch

from cnnkit.config import DEVICES, PRECISIONS
from cnnkit.errors import ConfigError, UnknownNameError

# fp32, bf16, fp16: None means float32 throughout, no autocast.
AUTOCAST_DTYPES = dict(zip(PRECISIONS, (None, torch.bfloat16, torch.float16), strict=True))

ModelT = TypeVar("ModelT", bound=torch.nn.Module)


@dataclass(frozen=True)
class Placement:
    """The device a run computes on and how: ``train_one_epoch`` and ``evaluate``
    take one; the default is the CPU in float32, with no autocast and no copies."""

    device: torch.device = torch.device("cpu")
    autocast_dtype: torch.dtype | None = None  # None: float32 throughout
    memory_format: torch.memory_format = torch.contiguous_format

    def autocast(self) -> torch.autocast:
        """The context the forward pass runs in; a no-op for float32."""
        enabled = self.autocast_dtype is not None
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=enabled)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling for fp16, whose 5-bit exponent flushes small gradients to zero;
        disabled (its calls pass straight through) for float32 and bf16."""
        enabled = self.autocast_dtype == torch.float16
        return torch.amp.GradScaler(self.device.type, enabled=enabled)

    def prepare(self, model: ModelT) -> ModelT:
        """``model`` moved to the device in this memory format (in place)."""
        # Module.to takes both at runtime; torch's overloads list them only one at a time.
        return model.to(self.device, memory_format=self.memory_format)  # type: ignore[call-overload]

    def layout(self, batch: torch.Tensor) -> torch.Tensor:
        """A float batch in this memory format (itself when it already is)."""
        return batch.contiguous(memory_format=self.memory_format)


CPU = Placement()


def resolve_device(name: str, local_rank: int = 0, distributed: bool = False) -> torch.device:
    """The device ``--device NAME`` means for the process with ``local_rank`` on its
    machine; one clear error when the device is not there."""
    if name not in DEVICES:
        raise UnknownNameError.of("device", name, DEVICES)
    if name == "auto":
        # MPS has no collective backend, so several processes fall back to the CPU.
        mps = torch.backends.mps.is_available() and not distributed
        name = "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"--device cuda: PyTorch finds no CUDA GPU here (torch {torch.__version__}); "
                "use --device cpu or --device auto"
            )
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"local rank {local_rank} needs GPU {local_rank}, but only "
                f"{torch.cuda.device_count()} are visible; start at most that many "
                "processes per machine"
            )
        return torch.device("cuda", local_rank)
    if name == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("--device mps: PyTorch finds no Apple MPS device here")
        if distributed:
            raise ConfigError(
                "--device mps: several processes need a collective backend, which MPS "
                "lacks; train on CPUs (gloo) or CUDA GPUs (NCCL)"
            )
    return torch.device(name)


def choose_placement(
    device: str, precision: str, local_rank: int = 0, distributed: bool = False
) -> Placement:
    """The ``Placement`` for ``--device`` and ``--precision``; refuses precisions the
    device cannot run."""
    if precision not in PRECISIONS:
        raise UnknownNameError.of("precision", precision, PRECISIONS)
    where = resolve_device(device, local_rank, distributed)
    if precision == "fp16" and where.type != "cuda":
        raise ConfigError(
            f"--precision fp16 needs a CUDA GPU (loss scaling and fast fp16 kernels), "
            f"not {where.type}; use --precision bf16 there"
        )
    if precision == "bf16" and where.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("--precision bf16: this GPU has no bf16 support; use fp16")
    channels_last = torch.channels_last if where.type == "cuda" else torch.contiguous_format
    return Placement(where, AUTOCAST_DTYPES[precision], channels_last)


def to_cpu(tree: object) -> object:
    """A nested dict/list of tensors with every tensor on the CPU. Dicts are copied
    with their type and attributes (a state_dict's ``_metadata``); CPU tensors are
    kept as they are, not copied."""
    if isinstance(tree, torch.Tensor):
        return tree.cpu()
    if isinstance(tree, dict):
        moved = copy.copy(tree)
        for key, value in tree.items():
            moved[key] = to_cpu(value)
        return moved
    if isinstance(tree, list):
        return [to_cpu(value) for value in tree]
    return tree
