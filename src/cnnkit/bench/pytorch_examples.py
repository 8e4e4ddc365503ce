"""The pytorch/examples MNIST recipe, a reference trainer for ``cnnkit bench``.

What the widely copied ``mnist/main.py`` of github.com/pytorch/examples does on a CPU,
restated in cnnkit's words: two 3x3 convolutions (32 and 64 maps) with ReLU, 2x2 max
pooling, dropout 0.25, a 9216 -> 128 layer, dropout 0.5 and a 10-way log-softmax,
trained with Adadelta (lr 1.0) under StepLR (gamma 0.7 after every epoch) on batches of
64 from torchvision's ``MNIST`` with ``ToTensor`` and ``Normalize((0.1307,), (0.3081,))``
and a shuffling ``DataLoader`` (no worker processes on a CPU), tested in batches of 1000
after every epoch; seed 1 (``--seed``), 14 epochs.

Run as ``python -m cnnkit.bench.pytorch_examples ROOT``: it prints one JSON line per epoch with
the wall-clock time (``time.time``) at the end of that epoch's test, so that the caller
measures from its own launch of the process, start-up and imports included.
"""

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from cnnkit.data.mnist import MNIST_MEAN, MNIST_STD  # the example's Normalize constants too

BATCH_SIZE, TEST_BATCH_SIZE = 64, 1000
LR, GAMMA, SEED, EPOCHS = 1.0, 0.7, 1, 14


class ExamplesNet(nn.Module):
    """The example's network, 28x28 inputs; 1.2 M parameters, 12 M multiply-adds."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3)  # (N, 32, 26, 26)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)  # (N, 64, 24, 24)
        self.pool = nn.MaxPool2d(2)  # (N, 64, 12, 12)
        self.dropout1 = nn.Dropout(0.25)
        self.fc1 = nn.Linear(64 * 12 * 12, 128)
        self.dropout2 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv2(F.relu(self.conv1(x)))))
        x = F.relu(self.fc1(self.dropout1(x).flatten(1)))
        return F.log_softmax(self.fc2(self.dropout2(x)), dim=1)  # log-probabilities


def loaders(
    root: Path, train_limit: int | None, test_limit: int | None
) -> tuple[torch.utils.data.DataLoader, torch.utils.data.DataLoader]:
    """The example's data path: torchvision's ``MNIST`` (raw files under ``root``), its
    two transforms, a shuffling loader; the first ``*_limit`` images when given."""
    from torchvision import datasets, transforms

    to_input = transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))]
    )
    splits = []
    for train, limit in ((True, train_limit), (False, test_limit)):
        split: torch.utils.data.Dataset = datasets.MNIST(root, train=train, transform=to_input)
        if limit is not None:
            split = torch.utils.data.Subset(split, range(limit))
        splits.append(split)
    return (
        torch.utils.data.DataLoader(splits[0], batch_size=BATCH_SIZE, shuffle=True),
        torch.utils.data.DataLoader(splits[1], batch_size=TEST_BATCH_SIZE),
    )


def accuracy(model: nn.Module, test_loader: torch.utils.data.DataLoader) -> float:
    model.eval()
    correct, count = 0, 0
    with torch.no_grad():
        for x, y in test_loader:
            correct += int((model(x).argmax(1) == y).sum())
            count += len(y)
    return correct / count


def train(
    root: Path,
    epochs: int,
    train_limit: int | None = None,
    test_limit: int | None = None,
    seed: int = SEED,
) -> list[dict]:
    """The recipe for ``epochs`` epochs; one record per epoch (images, training seconds,
    test accuracy, ``time.time()`` after the test)."""
    torch.manual_seed(seed)
    train_loader, test_loader = loaders(root, train_limit, test_limit)
    model = ExamplesNet()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=LR)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=GAMMA)
    records = []
    for _ in range(epochs):
        model.train()
        start, images = time.perf_counter(), 0
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = F.nll_loss(model(x), y)
            loss.backward()
            optimizer.step()
            images += len(y)
        seconds = time.perf_counter() - start
        correct = accuracy(model, test_loader)
        scheduler.step()
        records.append(
            {"images": images, "train_seconds": seconds, "accuracy": correct, "time": time.time()}
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="folder holding MNIST/raw (torchvision's layout)")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--train-limit", type=int)
    parser.add_argument("--test-limit", type=int)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    for record in train(args.root, args.epochs, args.train_limit, args.test_limit, args.seed):
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
