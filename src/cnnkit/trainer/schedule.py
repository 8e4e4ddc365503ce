"""The learning-rate schedule: a one-cycle shape as a pure function of the step."""

import math
from dataclasses import dataclass

import torch


@dataclass
class OneCycle:
    """Multiplier of the peak learning rate at each step: a linear warm-up over the
    first ``warmup_fraction`` of the steps, then cosine decay to zero (the shape of
    Smith and Topin's one-cycle policy, 2017).

    A plain dataclass so that ``LambdaLR.state_dict`` saves it, and defined for any
    number of steps, including the one or two of a tiny run.
    """

    total_steps: int
    warmup_fraction: float

    def __call__(self, step: int) -> float:
        warmup = max(1, round(self.warmup_fraction * self.total_steps))
        if step < warmup:
            return (step + 1) / warmup
        decay_steps = max(1, self.total_steps - warmup)
        progress = min(1.0, (step - warmup + 1) / decay_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def one_cycle(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, OneCycle(total_steps, warmup_fraction))
