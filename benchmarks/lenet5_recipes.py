"""How the faithful LeNet-5's default recipe was chosen: test accuracy per epoch for
a few recipes, each trained by cnnkit's own front door (`training.train`) on all of MNIST.

Slow (minutes per recipe on 2 cores). The table it prints is in README.md.

    python benchmarks/lenet5_recipes.py [--only N]
"""

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from cnnkit.config import TrainOptions
from cnnkit.models import recipe_for
from cnnkit.training import train

DEFAULT = recipe_for("lenet5")
RECIPES = [
    replace(DEFAULT, epochs=6, augment="none"),
    replace(DEFAULT, epochs=12, augment="none"),
    replace(DEFAULT, epochs=20, augment="none"),
    replace(DEFAULT, epochs=20, augment="shift"),
    DEFAULT,
    replace(DEFAULT, epochs=8, batch_size=32, lr=0.005, augment="none"),
    replace(DEFAULT, epochs=4, lr=0.03, augment="none"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, help="run only recipe number N (from 0)")
    args = parser.parse_args()
    chosen = RECIPES if args.only is None else [RECIPES[args.only]]
    for recipe in chosen:
        with tempfile.TemporaryDirectory() as out:
            options = TrainOptions(recipe=recipe, out=Path(out), progress=False, report=False)
            outcome = train(options)
        assert outcome is not None  # one process: it writes
        result = outcome.result
        accuracies = " ".join(f"{100 * r.test_accuracy:.2f}" for r in result.history)
        print(
            f"epochs {recipe.epochs:2d} batch {recipe.batch_size:3d} lr {recipe.lr:<6} "
            f"augment {recipe.augment:5s} | {accuracies} | {result.seconds:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
