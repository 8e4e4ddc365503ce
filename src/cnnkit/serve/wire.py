"""What the HTTP process and the model process say to each other: the operations the
server can be asked for, the frames that carry them, and the messages that need a type
of their own. Both processes import it; it imports no torch and no FastAPI.

Each message is a frame: its length (``LENGTH_BYTES``, big-endian) and a pickle, between
two processes of this package only. The child first sends ``("ready", {"description":
..., "max_pixels": ..., "index": ...})`` or ``("error", CnnkitError)``; then it answers
each ``Compute`` with a list of one result per item: the item's answer, its
``CnnkitError`` (the client's fault: a 4xx), an ``ItemFailure`` (a bug: a 500 for that
item's request alone), or ``WITHDRAWN``. While the child works on a batch, the HTTP
process may send ``Withdraw`` for an item whose request has gone (timed out, or its
client disconnected); the child reads them between items and skips those it has not
started, answering them ``WITHDRAWN``.

Adding an operation: a member of ``Operation`` here, its handler in ``worker.load``, its
route (``app``, ``search_routes``, ``explain_routes`` or ``read_routes``), and the page if
it shows it.
"""

import asyncio
import pickle
import socket
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

LENGTH_BYTES = 8


class Operation(str, Enum):
    """What the model process computes for a batch, and the route that asks for it.

    The value names it in frames and in the metrics' ``kind`` label; ``path`` is its
    HTTP route (POST when it ``takes_uploads``, GET otherwise); ``needs_index``: only a
    server started with an index (``cnnkit serve --index``) has it. The uploads of a
    route that ``takes_uploads`` wait for the model, so the server turns them away
    before reading the body when its queue is full.
    """

    path: str
    needs_index: bool
    takes_uploads: bool

    def __new__(cls, value: str, path: str, needs_index: bool, takes_uploads: bool) -> "Operation":
        operation = str.__new__(cls, value)
        operation._value_ = value
        operation.path = path
        operation.needs_index = needs_index
        operation.takes_uploads = takes_uploads
        return operation

    def __str__(self) -> str:
        return self.value  # as StrEnum (Python 3.11) has it, on 3.10 too

    @property
    def method(self) -> str:
        """Its route's HTTP method."""
        return "POST" if self.takes_uploads else "GET"

    @classmethod
    def served(cls, with_index: bool) -> list["Operation"]:
        """What a model process computes: every operation, an index's only with one."""
        return [operation for operation in cls if with_index or not operation.needs_index]

    # value, path, needs_index, takes_uploads; items -> one result each
    PREDICT = "predict", "/v1/predict", False, True  # Upload -> probabilities (K,)
    EXPLAIN = "explain", "/v1/explain", False, True  # (Upload, class or None) -> Explanation
    SEARCH = "search", "/v1/search", True, True  # (Upload, top) -> hits
    CLASS = "class", "/v1/search", True, False  # (class name, top) -> hits
    THUMBNAIL = "thumbnail", "/v1/thumbnails/{item_id}", True, False  # item id -> PNG
    READ = "read", "/v1/read", False, True  # Upload -> NumberRead


@dataclass(frozen=True)
class Compute:
    """A batch for the model process: its number (which a ``Withdraw`` names), what to
    compute, and the items."""

    number: int
    operation: Operation
    items: list[Any]


@dataclass(frozen=True)
class Withdraw:
    """The request of item ``position`` of batch ``number`` has gone: skip it if it has
    not been started. One for a batch already answered is ignored."""

    number: int
    position: int


class Skipped(Enum):
    """An item's answer when it was not computed (an enum, so that it pickles as itself)."""

    WITHDRAWN = "withdrawn"  # its request had gone before the model process reached it


WITHDRAWN = Skipped.WITHDRAWN


class ItemFailure(Exception):
    """An item that failed in the model process other than by a ``CnnkitError``: a bug,
    whose traceback the model process wrote to the server's log. Its request alone gets
    a 500 with this message, the others of its batch their own answers."""


@dataclass(frozen=True)
class LayerMaps:
    """One layer's activations for one image, as the page draws them: its maps side by
    side in one grayscale picture (``maps`` of them, each ``shape[2]`` pixels wide), or
    its units in one row (``maps`` 0: a fully connected layer, or maps of one unit
    each). A grey level ``p`` stands for the value ``low + p / 255 * (high - low)``: one
    scale for the whole layer, so that its maps compare."""

    name: str  # the module's name in the model ("c1")
    kind: str  # its counting rule ("conv", "subsampling", "linear", ...)
    shape: tuple[int, ...]  # of one example: (C, H, W) or (D,)
    units: int  # as ``cnnkit size`` counts them
    pixels: np.ndarray  # uint8 (H, maps * W), or (1, units)
    maps: int  # maps in ``pixels`` (at most ``shape[0]``); 0 for a row of units
    low: float  # the layer's least value (black)
    high: float  # its largest (white)


@dataclass(frozen=True)
class NoveltyVerdict:
    """How unlike the training images an image looks (``runs.novelty``'s score)."""

    score: float
    threshold: float  # scores above it are unusual

    @property
    def unusual(self) -> bool:
        return self.score > self.threshold


@dataclass(frozen=True)
class Explanation:
    """The child's answer to explain for one image (defined here, without torch, for
    the HTTP process to unpickle): the image as the network received it, every layer's
    activations, the class probabilities, and the evidence for the class ``target``
    (Grad-CAM and saliency in the input's frame, grey levels 0-255 for 0-1). The
    pictures are uint8 arrays: the HTTP process encodes them (``png``), so that the
    model process, the busier of the two, does not."""

    input: np.ndarray  # uint8 (H, W) or (H, W, 3) at the model's input size, prepared
    probs: np.ndarray  # (K,) class probabilities
    target: int  # the class explained: the one asked for, or the top class
    layers: tuple[LayerMaps, ...]  # in forward order
    gradcam_layer: str | None  # None: no convolution's output is larger than 1x1
    gradcam: np.ndarray | None  # uint8 (H, W)
    saliency: np.ndarray  # uint8 (H, W)
    novelty: NoveltyVerdict | None  # None: no verdict, ``novelty_note`` says why
    novelty_note: str = ""


@dataclass(frozen=True)
class DigitRead:
    """One digit of a number read (``read.results.DigitBox``, as the page draws it):
    its box in the image's pixels, its class and that class's probability as the reader
    scored it, and the network's probabilities of every class for the ink in the box."""

    box: tuple[int, int, int, int]  # x0, y0, x1, y1; x1 and y1 exclusive
    label: str
    probability: float
    probs: np.ndarray  # (K,) in the model's class order


@dataclass(frozen=True)
class NumberRead:
    """The child's answer to read for one image (``read.results.Reading``, defined here
    without torch for the HTTP process to unpickle); an empty ``text`` says why in
    ``reason``."""

    text: str
    confidence: float  # the probability of the whole string
    digits: tuple[DigitRead, ...]  # left to right
    size: tuple[int, int]  # (width, height) of the image, whose pixels the boxes are in
    reason: str = ""


def frame(message: Any) -> bytes:
    """``message`` as one frame: its length, then its pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(LENGTH_BYTES, "big") + data


def read_frame(sock: socket.socket) -> Any:
    """The next message on a blocking socket; ``EOFError`` once the other end closed."""

    def exactly(count: int) -> bytes:
        chunks = []
        while count:
            chunk = sock.recv(min(count, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)

    return pickle.loads(exactly(int.from_bytes(exactly(LENGTH_BYTES), "big")))


async def receive_frame(reader: asyncio.StreamReader) -> Any:
    """The next message on an event loop's stream; ``asyncio.IncompleteReadError`` once
    the other end closed."""
    length = int.from_bytes(await reader.readexactly(LENGTH_BYTES), "big")
    return pickle.loads(await reader.readexactly(length))
