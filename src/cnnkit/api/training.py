"""``cnnkit.train``: training from Python, through the same front door and with the same
options as ``cnnkit train``."""

from typing import Any

from cnnkit.api.run import Run
from cnnkit.config import TrainOptions
from cnnkit.runs import load_run
from cnnkit.training import train as train_options


def train(model: str = "lenet5", dataset: str = "mnist", **options: Any) -> Run | None:
    """Train ``model`` on ``dataset`` and return the trained ``Run``.

    ``options`` are ``cnnkit train``'s long options in snake_case (``epochs=1,
    train_limit=6000, test_limit=1000, out="runs/try", report=False``), checked as the
    command line checks them. A progress bar shows in a terminal and in a notebook;
    the report (``report.html``) is drawn unless ``report=False``. Under torchrun the
    processes that write nothing return None."""
    outcome = train_options(TrainOptions.checked(model=model, dataset=dataset, **options))
    if outcome is None:
        return None
    return Run(load_run(outcome.result.config.out), outcome.report)
