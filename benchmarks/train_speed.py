"""Training images/s of the zoo with the trainer's CPU memory format and without it.

Each model trains on the first images of MNIST through the trainer's own loop
(``trainer.loop.train_one_epoch``, its recipe's optimiser, batch size and augmentation)
once in PyTorch's default layout (NCHW, "before") and once in the layout the trainer
now chooses for it on a CPU (``trainer.fit.training_placement``, "after"), alternating, three
times each; the median of each and their ratio are printed. Run it under the CPU lock:

    flock /tmp/cnnkit-cpu.lock python benchmarks/train_speed.py [--images 3072]
"""

import argparse
import statistics

import torch

from cnnkit.data import load_dataset
from cnnkit.models import recipe_for
from cnnkit.models.fitting import build_for_images
from cnnkit.runtime.device import CPU
from cnnkit.trainer.fit import training_placement
from cnnkit.trainer.loop import shuffled_batches, steps_per_epoch, train_one_epoch
from cnnkit.trainer.optimizers import build_optimizer
from cnnkit.transforms import fit_to_input
from cnnkit.transforms.augment import build_augment

MODELS = ("lenet5", "lenet5-modern", "resnet20", "alexnet-small")


def images_per_second(name: str, chosen: bool, images: int) -> float:
    """One epoch over the first ``images`` of MNIST, as ``fit`` trains it, in the layout
    the trainer chooses for the model (``chosen``) or in NCHW."""
    train, _ = load_dataset("mnist")
    train = train.subset(images)
    recipe = recipe_for(name)
    torch.manual_seed(0)
    model = build_for_images(name, train.image_shape, len(train.classes))
    placement = training_placement(CPU, model) if chosen else CPU
    model = placement.prepare(model)
    augment = build_augment(
        recipe.augment, train.images, model.input_size[-1], 10, allow_flip=False, seed=0
    )
    steps = steps_per_epoch(images, recipe.batch_size)
    optimizer, scheduler = build_optimizer(model, recipe, steps)
    crop = augment is None
    batches = (
        (fit_to_input(x, model.input_size, crop), y)
        for x, y in shuffled_batches(
            train.images, train.labels, recipe.batch_size, torch.Generator().manual_seed(0)
        )
    )
    stats = train_one_epoch(
        model, batches, optimizer, scheduler, mean=train.mean, std=train.std,
        augment=augment, placement=placement,
    )  # fmt: skip
    return stats.images_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3072, help="training images per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    layouts = {"before": False, "after": True}
    print(f"{torch.get_num_threads()} threads")
    for name in args.models.split(","):
        runs: dict[str, list[float]] = {layout: [] for layout in layouts}
        for _ in range(args.repeats):
            for layout, chosen in layouts.items():
                runs[layout].append(images_per_second(name, chosen, args.images))
        before, after = (statistics.median(runs[layout]) for layout in layouts)
        print(
            f"{name:14s} before {before:8,.0f} img/s  after {after:8,.0f} img/s  "
            f"{after / before:.2f}x  ("
            + "; ".join(f"{k}: " + " ".join(f"{v:,.0f}" for v in vs) for k, vs in runs.items())
            + ")",
            flush=True,
        )


if __name__ == "__main__":
    main()
