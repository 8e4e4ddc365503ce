"""The IDX reader on the real MNIST files and on broken copies of them."""

import gzip
import hashlib

import numpy as np
import pytest

from cnnkit.data.idx import read_idx, read_idx_bytes
from cnnkit.data.locate import PACKAGE_FILES
from cnnkit.data.mnist import MNIST
from cnnkit.errors import DataError

SHIPPED = PACKAGE_FILES / "mnist"


def test_real_files_decode_to_the_published_shapes():
    images = read_idx(SHIPPED / "train-images-idx3-ubyte.gz")
    labels = read_idx(SHIPPED / "train-labels-idx1-ubyte.gz")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,)
    # The first training labels of MNIST, as every tutorial shows them.
    assert labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert abs(images.mean() / 255 - 0.1307) < 1e-4  # SOURCE.md's pixel mean


def test_shipped_content_matches_the_published_sha256():
    for file in MNIST.train + MNIST.test:
        content = read_idx_bytes(SHIPPED / (file.name + ".gz"))
        assert hashlib.sha256(content).hexdigest() == file.sha256


def test_uncompressed_and_gzipped_files_read_the_same(tmp_path):
    content = read_idx_bytes(SHIPPED / "t10k-labels-idx1-ubyte.gz")
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(content)
    assert np.array_equal(read_idx(raw), read_idx(SHIPPED / "t10k-labels-idx1-ubyte.gz"))


@pytest.fixture
def labels_content() -> bytes:
    return read_idx_bytes(SHIPPED / "t10k-labels-idx1-ubyte.gz")


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda c: b"\x12\x34" + c[2:], "not an IDX file"),
        (lambda c: c[:2] + b"\x42" + c[3:], "not an IDX file"),
        (lambda c: c[:-100], "truncated"),
        (lambda c: c + b"\x00\x01", "trailing bytes"),
        (lambda c: c[:6], "header truncated"),
        (lambda c: c[:2], "too short"),
    ],
    ids=["magic", "type-code", "truncated-data", "trailing", "truncated-header", "tiny"],
)
def test_broken_files_raise_an_error_naming_the_file(tmp_path, labels_content, mangle, message):
    broken = tmp_path / "broken-idx1-ubyte"
    broken.write_bytes(mangle(labels_content))
    with pytest.raises(DataError, match=message) as caught:
        read_idx(broken)
    assert str(broken) in str(caught.value)


def test_truncated_gzip_is_reported(tmp_path):
    archive = (SHIPPED / "t10k-images-idx3-ubyte.gz").read_bytes()
    broken = tmp_path / "t10k-images-idx3-ubyte.gz"
    broken.write_bytes(archive[: len(archive) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(broken)


def test_gzip_of_a_truncated_idx_is_reported(tmp_path, labels_content):
    broken = tmp_path / "labels.gz"
    broken.write_bytes(gzip.compress(labels_content[:-1]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(broken)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "nothing-here")
