"""Images to what an index stores: a run's penultimate-layer features, L2-normalised
(so that an inner product is the cosine similarity), its class log-probabilities from
the same forward pass (what ``search class`` ranks by), and a tiny image for
``search dupes``; plus the fingerprint that ties an index to the weights it was built
with."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.fx.experimental.optimization import fuse
from torch.fx.proxy import TraceError

from cnnkit.errors import FingerprintError
from cnnkit.runs import Run
from cnnkit.runtime.inference import flush_denormals
from cnnkit.transforms import normalize


def weights_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over a state_dict's names, dtypes, shapes and bytes, in name order: the
    same weights give the same fingerprint wherever they are saved."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}\t{tensor.dtype}\t{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def run_fingerprint(run: Run) -> str:
    return weights_fingerprint(run.checkpoint.state["model_state"])


def check_fingerprint(run: Run, expected: str, index_name: str) -> None:
    """Refuse a run whose weights are not the index's: its vectors would not compare."""
    found = run_fingerprint(run)
    if found != expected:
        raise FingerprintError(
            f"{run.path}: weights differ from those {index_name} was built with "
            f"(SHA-256 {found[:12]} vs {expected[:12]}); query with the index's checkpoint "
            "or build a new index"
        )


def find_head(model: nn.Module, input_shape: tuple[int, ...]) -> nn.Module | None:
    """The last layer that ``forward`` applies to ``forward_features``' output (fc,
    fc8, LeNet-5's RBF output...), checked on a probe batch; None when forward does
    more than that, and features and logits then take two passes."""
    calls: list[nn.Module] = []
    leaves = [module for module in model.modules() if not list(module.children())]
    hooks = [leaf.register_forward_hook(lambda m, i, o: calls.append(m)) for leaf in leaves]
    parameter = next(model.parameters())
    probe = torch.rand((2, *input_shape), generator=torch.Generator().manual_seed(0))
    probe = probe.to(parameter.device, parameter.dtype)
    try:
        with torch.inference_mode():
            logits = model(probe)
            head = calls[-1] if calls else None
            if head is None or not torch.allclose(
                head(forward_features(model)(probe)), logits, rtol=1e-4, atol=1e-4
            ):
                return None
    finally:
        for hook in hooks:
            hook.remove()
    return head


TINY_SIDE = 8  # pixels a side of the tiny images (search.dupes)


@dataclass(frozen=True)
class Embedding:
    vectors: np.ndarray  # float32 (N, D), rows of unit length (zero rows stay zero)
    scores: np.ndarray  # float32 (N, K) class log-probabilities
    tiny: np.ndarray  # uint8 (N, C * 8 * 8): the model's input, averaged over 8x8 cells

    def __getitem__(self, rows: np.ndarray) -> "Embedding":
        return Embedding(self.vectors[rows], self.scores[rows], self.tiny[rows])

    @staticmethod
    def concatenate(parts: list["Embedding"]) -> "Embedding":
        return Embedding(*(np.concatenate([getattr(p, name) for p in parts]) for name in PARTS))


PARTS = ("vectors", "scores", "tiny")  # an Embedding's arrays, as a shard stores them


def tiny_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C * 8 * 8): each image's mean colour in 8x8 cells (a tiny image,
    Torralba et al., "80 million tiny images", PAMI 2008)."""
    cells = nn.functional.adaptive_avg_pool2d(images.float(), TINY_SIDE)
    return cells.round().to(torch.uint8).flatten(1)


class FeaturesAndLogits(nn.Module):
    """A model's features and logits from one pass, through ``head`` where there is one."""

    def __init__(self, model: nn.Module, head: nn.Module | None) -> None:
        super().__init__()
        self.model, self.head = model, head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = forward_features(self.model)(x)
        return features, self.head(features) if self.head is not None else self.model(x)


def inference_model(
    model: nn.Module, input_shape: tuple[int, ...]
) -> tuple[nn.Module, torch.memory_format]:
    """``FeaturesAndLogits`` of ``model`` with each BatchNorm folded into the convolution
    before it (``torch.fx``'s ``fuse``), run in channels_last: 1.6x as fast for ResNet-8
    on two CPU cores (docs/search.md), with outputs equal up to rounding (checked on a
    probe). A model that fx cannot trace (LeNet-5's layers branch on autograd) runs as
    it is, where channels_last did not help either."""
    both = FeaturesAndLogits(model, find_head(model, input_shape)).eval()
    try:
        fused = fuse(both).to(memory_format=torch.channels_last)
    except (TraceError, TypeError, RuntimeError, AttributeError, NotImplementedError):
        return both, torch.contiguous_format
    parameter = next(model.parameters())
    probe = torch.rand((4, *input_shape), generator=torch.Generator().manual_seed(0))
    probe = probe.to(parameter.device, parameter.dtype)
    with torch.inference_mode():
        expected, found = both(probe), fused(probe.contiguous(memory_format=torch.channels_last))
    if not all(
        torch.allclose(a, b, rtol=1e-3, atol=1e-4) for a, b in zip(expected, found, strict=True)
    ):
        return both, torch.contiguous_format
    return fused, torch.channels_last


class Embedder:
    """``embedder(images)``: uint8 images (N, C, H, W), stored or prepared size, to an
    ``Embedding``, in batches on the run's device."""

    def __init__(self, run: Run, batch_size: int = 256) -> None:
        self.run, self.batch_size = run, batch_size
        self.model, self.memory_format = inference_model(run.model, run.record.input_shape)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> Embedding:
        flush_denormals()
        run, placement, record = self.run, self.run.placement, self.run.record
        features, logits, tiny = [], [], []
        for start in range(0, max(1, len(images)), self.batch_size):
            batch = run.prepare(images[start : start + self.batch_size]).to(placement.device)
            tiny.append(tiny_images(batch).cpu())
            x = normalize(batch, record.mean, record.std).contiguous(
                memory_format=self.memory_format
            )
            with placement.autocast():
                f, out = self.model(x)
            features.append(f.float())
            logits.append(out.float())
        vectors = nn.functional.normalize(torch.cat(features), dim=1)
        scores = torch.cat(logits).log_softmax(dim=1)
        return Embedding(vectors.cpu().numpy(), scores.cpu().numpy(), torch.cat(tiny).numpy())


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length (zero rows stay zero), as ``Embedder`` does."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def forward_features(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's ``forward_features``, typed (torch types module attributes as tensors)."""
    return cast(Callable[[torch.Tensor], torch.Tensor], model.forward_features)
