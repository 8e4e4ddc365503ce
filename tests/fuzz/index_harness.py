"""Property-based fuzzing of search index folders, run as ``python -m
tests.fuzz.index_harness`` by ``test_fuzz_index.py`` in a subprocess whose address space
is capped as ``harness.py``'s is.

A real index is built once by cnnkit's own builder (64 real MNIST digits, two shards;
LeNet-5 as cnnkit's checkpoint writer saves it, untrained: the files' formats are what
matter) with the exact backend, and a copy with FAISS's flat backend where FAISS is
installed. Each example changes one of its files: a JSON value of the manifest or of a
record replaced (a wrong type, a 5,000-digit integer, nesting 100,000 deep, NaN, an
infinity, a huge or negative number), a records line dropped, doubled or replaced by
bytes, an ``.npy`` file's header (shape, dtype, order) or values (NaN, infinities, other
shapes and dtypes), or any file's bytes (truncated, bit-flipped, a length rewritten,
chunks shuffled, as ``harness.mutants``). The manifest is then rehashed, so that the
change reaches the checks past the sizes and SHA-256s. Opening the index, a query, a
search by class and a search for near-duplicates must each work (with finite scores)
or raise one ``CnnkitError`` of one line. ``CNNKIT_FUZZ_EXAMPLES`` (default 250 per
target) sets the budget.
"""

import hashlib
import json
import re
import resource
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnkit.errors import CnnkitError
from cnnkit.models import build_model
from cnnkit.runs import RunRecord, save_checkpoint
from cnnkit.search import BuildSettings, build_index, find_dupes, open_index
from cnnkit.search.collection import dataset_collection
from tests.fuzz.harness import EXAMPLES, HEADROOM, mutants

TARGETS = ("manifest", "records", "vectors", "scores", "tiny", "faiss")
HUGE = "1" + "0" * 4999  # an integer Python's int() refuses to parse (over 4,300 digits)
DEEP = "[" * 100_000 + "]" * 100_000  # deeper than Python's recursion limit


def build(folder: Path) -> dict[str, Path]:
    """The indexes to mutate: "exact", and "faiss" (flat) where FAISS is installed."""
    model = build_model("lenet5", num_classes=10, in_channels=1)
    record = RunRecord("lenet5", 10, 1, (32, 32), (28, 28), tuple("0123456789"),
                       (0.13,), (0.31,), "mnist", "digit")  # fmt: skip
    checkpoint = folder / "checkpoint.pt"
    save_checkpoint({"record": record.to_dict(), "model_state": model.state_dict(), "epoch": 1},
                    checkpoint)  # fmt: skip
    indexes = {}
    for backend in ("exact", "flat"):
        out = folder / backend
        try:
            build_index(checkpoint, out, lambda run: dataset_collection("mnist", "train", run, 64),
                        BuildSettings(backend=backend, shard_size=32, workers=0))  # fmt: skip
        except CnnkitError:  # FAISS is not installed
            continue
        indexes["exact" if backend == "exact" else "faiss"] = out
    return indexes


def rehash(folder: Path) -> None:
    """The manifest's bytes and SHA-256 of every file, as the files are now (a manifest
    changed on purpose is left alone where it is no longer the JSON object it was)."""
    path = folder / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
        entries = [e for shard in manifest["shards"] for e in shard["files"].values()]
        entries += [manifest["backend"]["file"]] if manifest["backend"].get("file") else []
        for entry in entries:
            data = (folder / entry["name"]).read_bytes()
            entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return
    path.write_text(json.dumps(manifest))


RAW = {"huge": HUGE, "-huge": "-" + HUGE, "deep": DEEP, "nan": "NaN", "inf": "Infinity",
       "1e999": "1e999", "big": str(1 << 64), "neg": "-1", "float": "0.5"}  # fmt: skip


@st.composite
def json_values(draw: st.DrawFn) -> str:
    """A JSON value as text: a hostile number or nesting, or a value of another type."""
    kind = draw(st.sampled_from(["raw", "plain"]))
    if kind == "raw":
        return RAW[draw(st.sampled_from(sorted(RAW)))]
    value = draw(
        st.one_of(
            st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70),
            st.text(max_size=20), st.lists(st.integers(-3, 3), max_size=3),
            st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
            st.sampled_from(["", "../manifest.json", "float16", "faiss-00000.index", "mnist",
                             "test", "shard-00000.tiny.npy", "0" * 64]),
        )
    )  # fmt: skip
    return json.dumps(value)


def leaves(value: object, path: tuple = ()) -> list[tuple]:
    """The paths (keys and positions) of every value in a parsed JSON document."""
    found = [path] if path else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(
        value, list) else []  # fmt: skip
    for key, child in items:
        found += leaves(child, (*path, key))
    return found


MARK = "__cnnkit_fuzz__"


@st.composite
def json_mutant(draw: st.DrawFn, text: str) -> str:
    """``text`` (one JSON document) with one value replaced or one key removed."""
    document = json.loads(text)
    path = draw(st.sampled_from(leaves(document)))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()) and draw(st.booleans()):
        del parent[path[-1]]
        return json.dumps(document)
    parent[path[-1]] = MARK
    return json.dumps(document).replace(json.dumps(MARK), draw(json_values()), 1)


@st.composite
def records_mutant(draw: st.DrawFn, data: bytes) -> bytes:
    lines = data.decode().splitlines()
    at = draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["value", "value", "drop", "double", "bytes", "swap"]))
    if kind == "value":
        lines[at] = draw(json_mutant(lines[at]))
    elif kind == "drop":
        del lines[at]
    elif kind == "double":
        lines.insert(at, lines[at])
    elif kind == "swap":
        other = draw(st.integers(0, len(lines) - 1))
        lines[at], lines[other] = lines[other], lines[at]
    else:
        lines[at] = draw(st.binary(max_size=40)).decode("latin-1")
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


@st.composite
def npy_mutant(draw: st.DrawFn, data: bytes, path: Path) -> bytes:
    """An ``.npy`` file with its header's shape, dtype or order rewritten, its values
    changed, saved as another shape or dtype, or its bytes mutated."""
    kind = draw(st.sampled_from(["header", "values", "array", "bytes"]))
    if kind == "bytes":
        return draw(mutants(data))
    if kind == "header":
        header_end = data.index(b"\n") + 1
        header = data[:header_end].decode("latin-1")
        field = draw(st.sampled_from(["shape", "descr", "fortran_order"]))
        new = {
            "shape": draw(st.sampled_from(["(32, 84)", "(31, 84)", "(33,)", "(0, 0)", "()",
                                           "(32, 84, 1)", "(4294967296, 64)", "(32, -1)"])),
            "descr": draw(st.sampled_from(["'<f8'", "'<f2'", "'|u1'", "'>f4'", "'|O'", "'<c8'"])),
            "fortran_order": draw(st.sampled_from(["True", "False"])),
        }[field]  # fmt: skip
        header = re.sub(rf"'{field}': [^,}}]+(\)[^,}}]*)?", f"'{field}': {new}", header, count=1)
        return header.encode("latin-1") + data[header_end:]
    array = np.load(path)
    if kind == "values" and array.size:
        flat = array.reshape(-1).copy()
        position = draw(st.integers(0, flat.size - 1))
        if array.dtype.kind == "f":
            flat[position] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 2.0, -1.0]))
        else:
            flat[position] = draw(st.integers(0, 255))
        array = flat.reshape(array.shape)
    else:
        change = draw(st.sampled_from(["rows", "columns", "dtype", "zeros"]))
        if change == "rows":
            array = array[: draw(st.integers(0, len(array)))]
        elif change == "columns":
            array = array[:, : draw(st.integers(0, array.shape[1]))]
        elif change == "dtype":
            array = array.astype(draw(st.sampled_from(["float64", "float16", "uint8", "int64"])))
        else:
            array = np.zeros_like(array)
    buffer = path.with_suffix(".tmp.npy")
    np.save(buffer, array)
    out = buffer.read_bytes()
    buffer.unlink()
    return out


def use(folder: Path) -> None:
    """What a user does with an index: open it, query it, search by class, find dupes."""
    index = open_index(folder)
    queries = np.random.default_rng(0).standard_normal((3, index.manifest.feature_size))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    for hits in index.query(queries, top=5):
        assert all(np.isfinite(hit.score) for hit in hits), hits
    assert all(np.isfinite(hit.score) for hit in index.by_class(index.classes[0], top=5))
    find_dupes(index)


def fuzz(target: str, original: Path, scratch: Path) -> dict:
    counts = {"inputs": 0, "opened": 0, "refused": 0}
    manifest = json.loads((original / "manifest.json").read_text())
    if target == "manifest":
        name = "manifest.json"
    elif target == "faiss":
        name = manifest["backend"]["file"]["name"]
    else:
        name = manifest["shards"][1]["files"][target]["name"]
    data = (original / name).read_bytes()
    if target == "manifest":
        strategy = st.one_of(json_mutant(data.decode()).map(str.encode), mutants(data))
    elif target == "records":
        strategy = st.one_of(records_mutant(data), mutants(data))
    elif target == "faiss":
        strategy = mutants(data)
    else:
        strategy = npy_mutant(data, original / name)
    work = scratch / f"work-{target}"

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def opens_or_refuses(mutant: bytes) -> None:
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(original, work)
        (work / name).write_bytes(mutant)
        if target != "manifest":
            rehash(work)
        counts["inputs"] += 1
        try:
            use(work)
        except CnnkitError as error:
            assert "\n" not in str(error), f"{target}: a message of several lines: {error!r}"
            counts["refused"] += 1
        else:
            counts["opened"] += 1

    opens_or_refuses()
    return counts


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        indexes = build(scratch)
        for index in indexes.values():
            use(index)  # the originals work (and warm up imports)
        held = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (held + HEADROOM, resource.RLIM_INFINITY))
        for target in sys.argv[1:] or TARGETS:
            if target == "faiss" and "faiss" not in indexes:
                print("fuzz index-faiss: skipped (FAISS is not installed)", flush=True)
                continue
            original = indexes["faiss" if target == "faiss" else "exact"]
            counts = fuzz(target, original, scratch)
            print(
                f"fuzz index-{target}: {counts['inputs']} inputs, {counts['opened']} opened, "
                f"{counts['refused']} refused with one line",
                flush=True,
            )


if __name__ == "__main__":
    main()
