"""The trainer: ``fit(config)`` writes a run (its checkpoint and metrics each epoch).

Users train through ``cnnkit.training.train``, the one front door, which adds the
report and the warnings; consumers of trained runs never import this package.
"""

from cnnkit.trainer.fit import FitResult, fit
from cnnkit.trainer.loop import steps_per_epoch
from cnnkit.trainer.optimizers import build_optimizer, sgd_one_cycle

__all__ = ["FitResult", "build_optimizer", "fit", "sgd_one_cycle", "steps_per_epoch"]
