"""``--compile``: train through ``torch.compile`` where it works, eagerly where not.

torch.compile needs a working C++ compiler (CPU) or Triton (CUDA) and compiles on
the first call, so a failure shows up only then. ``CompiledOrEager`` first compiles
a tiny function forward and backward to check the toolchain, then tries the compiled
model on each call; when either fails it says so once and goes on with the eager
model: a missing compiler costs speed, never the run. The eager module holds the weights, so
checkpoints look the same either way.
"""

import warnings
from collections.abc import Callable

import torch
from torch import nn


class CompileFallbackWarning(UserWarning):
    """torch.compile could not be used; training goes on without it."""


def toolchain_check(device: torch.device) -> None:
    """Compile and run a tiny function forward and backward on ``device``: raises
    when the compiler toolchain is missing, before any training step is at stake."""
    probe = torch.compile(lambda x: torch.sin(2 * x))
    x = torch.ones(8, device=device, requires_grad=True)
    probe(x).sum().backward()


class CompiledOrEager(nn.Module):
    """``model`` compiled by ``torch.compile``, falling back to ``model`` on failure."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.eager = model
        self.compiled: Callable[..., torch.Tensor] | None = None
        try:
            toolchain_check(device)
            self.compiled = torch.compile(model)
        except Exception as error:  # no compiler, or torch.compile unsupported here
            self._fall_back(error)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.compiled is not None:
            try:
                return self.compiled(*inputs)
            except Exception as error:  # e.g. no C++ compiler for the generated kernels
                self._fall_back(error)
        return self.eager(*inputs)

    def _fall_back(self, error: Exception) -> None:
        self.compiled = None
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        warnings.warn(
            f"torch.compile failed ({reason[:200]}); training without it",
            CompileFallbackWarning,
            stacklevel=3,
        )
