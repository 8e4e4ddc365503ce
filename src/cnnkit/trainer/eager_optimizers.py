"""torch's optimisers without the import of ``torch._dynamo`` that their first use pays.

``torch.optim.Optimizer`` guards ``add_param_group``, ``zero_grad``, ``state_dict``
and ``load_state_dict`` against torch.compile with ``torch._disable_dynamo``, and SGD's
``step`` with a wrapper that calls ``torch._dynamo.graph_break``; the first call of any
of them imports ``torch._dynamo`` (with sympy: about 900 modules). Measured on this
2-core machine (torch 2.14.1): constructing an SGD took 3.8 s on a busy machine and
raised the peak RSS of a LeNet-5 run by about 130 MB. cnnkit steps its optimisers
eagerly (``--compile`` compiles the model, not the step), so it calls torch's own
method bodies (their ``__wrapped__``) without those guards; ``step`` runs under
``no_grad``, as the guard sets it for a non-differentiable optimiser.
"""

import torch
from torch.optim import Optimizer


class LeanOptimizer(Optimizer):
    """``Optimizer`` with its bookkeeping methods unguarded (the same code)."""

    add_param_group = Optimizer.add_param_group.__wrapped__  # type: ignore[attr-defined]
    zero_grad = Optimizer.zero_grad.__wrapped__  # type: ignore[attr-defined]
    state_dict = Optimizer.state_dict.__wrapped__  # type: ignore[attr-defined]
    load_state_dict = Optimizer.load_state_dict.__wrapped__  # type: ignore[attr-defined]


class LeanSGD(LeanOptimizer, torch.optim.SGD):
    """``torch.optim.SGD`` (its update, bit for bit) without the import."""

    step = torch.no_grad()(torch.optim.SGD.step.__wrapped__)  # type: ignore[attr-defined]


class LeanAdam(LeanOptimizer, torch.optim.Adam):
    """``torch.optim.Adam`` (its update, bit for bit) without the import."""

    step = torch.no_grad()(torch.optim.Adam.step.__wrapped__)  # type: ignore[attr-defined]
