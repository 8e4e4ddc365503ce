"""What the search tests share: how many MNIST digits their index holds, the label a
digit file's name carries, and a folder's digest to show a failed command left it intact."""

import hashlib
from pathlib import Path

MNIST_ITEMS = 2000  # training digits indexed


def label_of(path: Path) -> str:
    return path.stem.split("label")[1]


def folder_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file in ``folder`` but the lock, to show it was left intact."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != ".lock"
    }
