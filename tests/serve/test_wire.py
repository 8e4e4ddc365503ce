"""The wire between the HTTP process and the model process: frames carry operations and
answers unchanged on both kinds of socket, an operation's value is its name everywhere,
and the model process has a handler for every operation it serves."""

import asyncio
import pickle
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from cnnkit.serve.wire import (
    Explanation,
    LayerMaps,
    NoveltyVerdict,
    Operation,
    frame,
    read_frame,
    receive_frame,
)

EXPLANATION = Explanation(
    input=np.arange(16, dtype=np.uint8).reshape(4, 4),
    probs=np.array([0.25, 0.75]),
    target=1,
    layers=(LayerMaps("c1", "conv", (2, 3, 3), 18, np.eye(3, 6, dtype=np.uint8), 2, -1.5, 1.5),),
    gradcam_layer="c1",
    gradcam=np.full((4, 4), 255, np.uint8),
    saliency=np.zeros((4, 4), np.uint8),
    novelty=NoveltyVerdict(40.0, 31.5),
)
MESSAGES = [
    ("ready", {"description": {"model": "lenet5"}, "max_pixels": 89_478_485, "index": None}),
    *((operation, [n, "item"]) for n, operation in enumerate(Operation)),
    [EXPLANATION, ValueError("one item's error")],
    b"\x00" * (3 << 20),  # longer than one recv
]


def assert_same(received: list, sent: list) -> None:
    assert received[:-2] == sent[:-2]
    assert all(type(op) is Operation for op, _ in received[1:-2])  # members, not strings
    (explanation, error), big = received[-2], received[-1]
    assert explanation.target == 1 and explanation.novelty.unusual
    (layer,) = explanation.layers
    assert (layer.name, layer.shape, layer.maps, layer.low) == ("c1", (2, 3, 3), 2, -1.5)
    for name in ("input", "probs", "gradcam", "saliency"):
        np.testing.assert_array_equal(getattr(explanation, name), getattr(EXPLANATION, name))
    np.testing.assert_array_equal(layer.pixels, EXPLANATION.layers[0].pixels)
    assert isinstance(error, ValueError) and str(error) == "one item's error"
    assert big == sent[-1]


@contextmanager
def sending(messages: list) -> Iterator[socket.socket]:
    """The receiving end of a socket pair whose other end a thread writes ``messages``
    to, then closes (a socket's buffer holds less than they take)."""
    ours, theirs = socket.socketpair()

    def send() -> None:
        with ours:
            for message in messages:
                ours.sendall(frame(message))

    sender = threading.Thread(target=send)
    sender.start()
    try:
        with theirs:
            yield theirs
    finally:
        sender.join()


def test_frames_on_a_blocking_socket_arrive_unchanged_then_eof():
    with sending(MESSAGES) as sock:
        received = [read_frame(sock) for _ in MESSAGES]
        with pytest.raises(EOFError):
            read_frame(sock)
    assert_same(received, MESSAGES)


def test_frames_on_an_event_loop_arrive_unchanged_then_an_incomplete_read():
    async def receive_all(sock: socket.socket) -> list:
        reader, writer = await asyncio.open_connection(sock=sock.dup())
        received = [await receive_frame(reader) for _ in MESSAGES]
        with pytest.raises(asyncio.IncompleteReadError):
            await receive_frame(reader)
        writer.close()
        await writer.wait_closed()
        return received

    with sending(MESSAGES) as sock:
        received = asyncio.run(receive_all(sock))
    assert_same(received, MESSAGES)


def test_an_operations_value_is_its_name_in_frames_metrics_and_lookups():
    assert len({operation.value for operation in Operation}) == len(Operation)
    for operation in Operation:
        assert str(operation) == f"{operation}" == operation.value  # the metrics' kind label
        assert Operation(operation.value) is operation
        assert pickle.loads(pickle.dumps(operation)) is operation
        assert operation.path.startswith("/v1/")
    # The index's operations are exactly those a server without an index answers 404.
    assert {op for op in Operation if op.needs_index} == {
        Operation.SEARCH,
        Operation.CLASS,
        Operation.THUMBNAIL,
    }


@pytest.mark.parametrize("with_index", [False, True], ids=["no index", "index"])
def test_the_model_process_has_a_handler_for_each_operation(
    digit_checkpoint, digit_index, with_index, load_handlers
):
    index = [str(digit_index)] if with_index else []
    handlers, ready = load_handlers(digit_checkpoint, index)
    assert set(handlers) == set(Operation.served(with_index))
    assert (ready["index"] is not None) == with_index
    assert ready["description"]["model"] == "lenet5"
