"""How the faithful LeNet-5's default recipe was chosen: test accuracy per epoch for
a few recipes, each trained by cnnkit's own `fit` on all of MNIST.

Slow (minutes per recipe on 2 cores). The table it prints is in README.md.

    python benchmarks/lenet5_recipes.py [--only N]
"""

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from cnnkit.config import TrainConfig, recipe_for
from cnnkit.trainer.fit import fit

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
            config = TrainConfig(model="lenet5", recipe=recipe, out=Path(out), progress=False)
            result = fit(config)
        accuracies = " ".join(f"{100 * (1 - r['test_top1_error']):.2f}" for r in result.history)
        print(
            f"epochs {recipe.epochs:2d} batch {recipe.batch_size:3d} lr {recipe.lr:<6} "
            f"augment {recipe.augment:5s} | {accuracies} | {result.seconds:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
