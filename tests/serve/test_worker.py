"""The model process's loop (``worker.serve``) in a thread, on a socket pair, with the real
LeNet-5 run's handlers: every item gets its own answer, a bug in one item fails that item
alone (its traceback in the log), and items withdrawn before the loop reaches them are
never computed."""

import logging
import socket
import threading

import numpy as np

from cnnkit.errors import ImageError
from cnnkit.serve.uploads import Upload
from cnnkit.serve.wire import (
    WITHDRAWN,
    Compute,
    ItemFailure,
    Operation,
    Withdraw,
    frame,
    read_frame,
)
from cnnkit.serve.worker import Handler, answer, serve


def serving_loop(handlers, *messages):
    """``messages`` sent to the loop before it starts (so that it finds them all
    waiting), then its answer to the first batch; the loop ends when we close."""
    ours, theirs = socket.socketpair()
    ours.sendall(b"".join(frame(message) for message in messages))
    loop = threading.Thread(target=serve, args=(theirs, handlers))
    loop.start()
    try:
        return read_frame(ours)
    finally:
        ours.close()
        loop.join()
        theirs.close()


def test_items_withdrawn_before_the_model_process_reaches_them_are_not_computed(
    serve_extra, digit_checkpoint, digits, load_handlers
):
    handlers, _ = load_handlers(digit_checkpoint)
    decoded: list[str] = []
    predict = handlers[Operation.PREDICT]

    def read(upload):
        decoded.append(upload.name)
        return predict.each(upload)

    uploads = [Upload(f"{n}.png", digit.png) for n, digit in enumerate(digits[:4])]
    results = serving_loop(
        {Operation.PREDICT: Handler(read, predict.together)},
        Withdraw(6, 0),  # of a batch already answered: ignored
        Compute(7, Operation.PREDICT, uploads),
        Withdraw(7, 1),
        Withdraw(7, 3),
    )
    assert decoded == ["0.png", "2.png"]  # the withdrawn ones were never decoded
    assert results[1] is WITHDRAWN and results[3] is WITHDRAWN
    for n in (0, 2):
        assert results[n].shape == (10,) and int(np.argmax(results[n])) == digits[n].label


def test_each_item_gets_its_own_answer_and_a_bug_fails_its_item_alone(caplog):
    def each(item: int) -> int:
        if item == 1:
            raise ImageError("item 1: not a readable image")
        if item == 2:
            raise KeyError("a bug in preparing item 2")
        return item

    def together(items: list[int]) -> list[int]:
        if 4 in items:
            raise ZeroDivisionError("a bug in the forward pass of item 4")
        return [10 * item for item in items]

    with caplog.at_level(logging.ERROR):
        results = answer(
            Operation.PREDICT, Handler(each, together), [0, 1, 2, 3, 4], lambda p: True
        )
    assert results[0] == 0 and results[3] == 30  # computed together, then one at a time
    assert isinstance(results[1], ImageError)  # the client's fault: its own 400
    for failed in (results[2], results[4]):
        assert isinstance(failed, ItemFailure) and "traceback is in the server's log" in str(failed)
        assert "bug" not in str(failed)  # the details stay on the server
    logged = [record for record in caplog.records if record.exc_info]
    assert [record.getMessage() for record in logged] == [
        "predict: item 2 of its batch failed",
        "predict: item 4 of its batch failed",
    ]


def test_an_items_own_error_in_the_forward_pass_stays_its_own(caplog):
    """Found one at a time after the batch failed: a client's error is its 4xx, not a 500."""

    def together(items: list[int]) -> list[int]:
        if 3 in items:
            raise ImageError("item 3: too small to read")
        return items

    with caplog.at_level(logging.ERROR):
        results = answer(Operation.PREDICT, Handler(lambda i: i, together), [1, 3], lambda p: 1)
    assert results[0] == 1 and isinstance(results[1], ImageError)
    assert not [record for record in caplog.records if record.exc_info]


def test_a_bug_outside_any_item_fails_its_batch_and_the_loop_goes_on(caplog):
    """A handler that gives too few answers, or an operation with no handler: every item
    of that batch is a failure, and the next batch is answered."""

    def too_few(items: list[int]) -> list[int]:
        return items[:-1]

    handlers = {Operation.PREDICT: Handler(lambda i: i, too_few)}
    ours, theirs = socket.socketpair()
    ours.sendall(frame(Compute(1, Operation.EXPLAIN, [0, 1])))  # no handler for it
    ours.sendall(frame(Compute(2, Operation.PREDICT, [5, 6])))
    loop = threading.Thread(target=serve, args=(theirs, handlers))
    with caplog.at_level(logging.ERROR):
        loop.start()
        try:
            first, second = read_frame(ours), read_frame(ours)
        finally:
            ours.close()
            loop.join()
            theirs.close()
    assert [type(result) for result in first] == [ItemFailure, ItemFailure]
    assert [type(result) for result in second] == [ItemFailure, ItemFailure]  # one at a time
    assert any("a batch of 2 items failed" in r.getMessage() for r in caplog.records)
