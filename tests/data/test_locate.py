"""Data look-up order, checksum verification, and the download path (on loopback)."""

import dataclasses
import functools
import gzip
import http.server
import shutil
import threading

import pytest

from cnnkit.data.download import content_digest
from cnnkit.data.locate import PACKAGE_FILES
from cnnkit.data.mnist import MNIST, load_idx_dataset
from cnnkit.errors import ChecksumError, DownloadError

SHIPPED = PACKAGE_FILES / "mnist"
TEST_FILES = [f.name + ".gz" for f in MNIST.test]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Keep the user's cache and $CNNKIT_DATA out of these tests."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CNNKIT_DATA", raising=False)


@pytest.fixture
def mirror(tmp_path):
    """An HTTP server on 127.0.0.1 that serves a folder, standing in for a mirror."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def not_shipped(tmp_path, mirrors: tuple[str, ...]):
    """MNIST's facts under another name, so that no shipped copy exists."""
    return dataclasses.replace(MNIST, name="mnist-elsewhere", mirrors=mirrors)


def test_shipped_files_verify():
    for file in MNIST.train + MNIST.test:
        assert content_digest(SHIPPED / (file.name + ".gz")) == file.sha256


def test_data_dir_comes_before_the_environment_and_the_package(tmp_path, monkeypatch):
    first, second = tmp_path / "first" / "mnist", tmp_path / "second"
    first.mkdir(parents=True)
    second.mkdir()
    for name in TEST_FILES:
        shutil.copy(SHIPPED / name, first / name)
        (second / name).write_bytes(b"not even gzip")
    monkeypatch.setenv("CNNKIT_DATA", str(second))
    # --data-dir wins: the good copies load.
    assert len(load_idx_dataset(MNIST, "test", tmp_path / "first")) == 10000
    # Without it, $CNNKIT_DATA comes first and its broken copies are reported, not skipped.
    with pytest.raises(ChecksumError, match=str(second)):
        load_idx_dataset(MNIST, "test")


def test_checksum_mismatch_names_the_file(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    content = gzip.decompress((SHIPPED / TEST_FILES[1]).read_bytes())
    (folder / TEST_FILES[0]).write_bytes((SHIPPED / TEST_FILES[0]).read_bytes())
    (folder / "t10k-labels-idx1-ubyte").write_bytes(content[:-1] + b"\x03")  # one label changed
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte: content SHA-256"):
        load_idx_dataset(MNIST, "test", tmp_path)


def test_download_from_a_mirror_with_checksum(tmp_path, mirror):
    served, url = mirror
    for name in TEST_FILES:
        shutil.copy(SHIPPED / name, served / name)
    spec = not_shipped(tmp_path, (url,))
    test_set = load_idx_dataset(spec, "test", tmp_path / "data")
    assert len(test_set) == 10000 and test_set.labels[:3].tolist() == [7, 2, 1]
    downloaded = sorted(p.name for p in (tmp_path / "data" / spec.name).iterdir())
    assert downloaded == sorted(TEST_FILES)  # no temporary files left behind


def test_download_falls_back_to_the_next_mirror(tmp_path, mirror):
    served, url = mirror
    for name in TEST_FILES:
        shutil.copy(SHIPPED / name, served / name)
    spec = not_shipped(tmp_path, ("http://127.0.0.1:9/nothing/", url))
    assert len(load_idx_dataset(spec, "test", tmp_path / "data")) == 10000


def test_corrupt_download_is_rejected_and_not_kept(tmp_path, mirror):
    served, url = mirror
    archive = (SHIPPED / TEST_FILES[0]).read_bytes()
    (served / TEST_FILES[0]).write_bytes(archive[:-1000])  # truncated in transit
    spec = not_shipped(tmp_path, (url,))
    with pytest.raises(DownloadError, match="no mirror delivered a valid file"):
        load_idx_dataset(spec, "test", tmp_path / "data")
    assert list((tmp_path / "data" / spec.name).iterdir()) == []
