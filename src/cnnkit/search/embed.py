"""Images to what an index stores: a run's penultimate-layer features, L2-normalised
(so that an inner product is the cosine similarity), its class log-probabilities from
the same forward pass (what ``search class`` ranks by), and a tiny image for
``search dupes``; plus the fingerprint that ties an index to the weights it was built
with."""

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cnnkit.errors import FingerprintError
from cnnkit.runs import Run


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


class Embedder:
    """``embedder(images)``: uint8 images (N, C, H, W), stored or prepared size, to an
    ``Embedding``, in batches on the run's device, through the run layer's one
    inference path (``Run.features_and_logits``)."""

    def __init__(self, run: Run, batch_size: int = 256) -> None:
        self.run, self.batch_size = run, batch_size
        run.fused  # noqa: B018 (folded once, here, before any worker process is forked)

    def __call__(self, images: torch.Tensor) -> Embedding:
        prepared = self.run.prepare(images)
        features, logits = self.run.features_and_logits(prepared, self.batch_size)
        vectors = nn.functional.normalize(features, dim=1)
        return Embedding(
            vectors.numpy(),
            logits.log_softmax(dim=1).numpy(),
            tiny_images(prepared).numpy(),
        )


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to unit length (zero rows stay zero), as ``Embedder`` does."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
