"""The shipped MNIST files' SOURCE.md states what cnnkit verifies and the files' license."""

import hashlib
import re
from importlib.resources import files

from cnnkit.data.mnist import MNIST

# Read through the package, as an installed wheel would hold it, not through the repo tree.
SHIPPED = files("cnnkit.data").joinpath("files", "mnist")
SOURCE = SHIPPED.joinpath("SOURCE.md").read_text(encoding="utf-8")

# `sha256sum`-style lines: a digest, then a file name (and, for MD5s, a trailing note).
DIGEST_LINE = re.compile(r"^[ \t]+([0-9a-f]{32}|[0-9a-f]{64})[ \t]+(\S+)", re.MULTILINE)


def listed(length: int) -> dict[str, str]:
    """file name -> digest, for the digests of ``length`` hex digits SOURCE.md lists."""
    return {name: digest for digest, name in DIGEST_LINE.findall(SOURCE) if len(digest) == length}


def test_listed_sha256_are_the_ones_cnnkit_verifies() -> None:
    verified = {file.name: file.sha256 for file in MNIST.train + MNIST.test}
    assert listed(64) == verified


def test_listed_md5_are_the_shipped_archives() -> None:
    md5s = listed(32)
    assert len(md5s) == 3  # the three original archives; train-images was re-compressed
    for name, digest in md5s.items():
        assert hashlib.md5(SHIPPED.joinpath(name).read_bytes()).hexdigest() == digest, name


def test_names_the_source_and_the_license() -> None:
    assert "CC BY-SA 3.0" in SOURCE and "CC BY-SA 3.0" in MNIST.license
    for author in ("Yann LeCun", "Corinna Cortes", "Christopher J.C. Burges"):
        assert author in SOURCE
    assert "http://yann.lecun.com/exdb/mnist/" in SOURCE


def test_states_the_normalisation_cnnkit_uses() -> None:
    # mnist.py cites SOURCE.md for its mean; tests/data/test_idx.py measures it.
    assert f"pixel mean {MNIST.mean}, std {MNIST.std}" in SOURCE
