"""What the search tests share: how many MNIST digits their index holds, the label a
digit file's name carries, a folder's digest to show a failed command left it intact,
and the manifest rehashed after a file was changed on purpose."""

import hashlib
import json
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


def rehash(index: Path) -> None:
    """Rewrite the manifest's bytes and SHA-256 of every file it lists, so that a file
    changed on purpose passes those checks and reaches the deeper ones."""
    path = index / "manifest.json"
    manifest = json.loads(path.read_text())
    entries = [entry for shard in manifest["shards"] for entry in shard["files"].values()]
    entries += [manifest["backend"]["file"]] if manifest["backend"].get("file") else []
    for entry in entries:
        data = (index / entry["name"]).read_bytes()
        entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    path.write_text(json.dumps(manifest, indent=1))
