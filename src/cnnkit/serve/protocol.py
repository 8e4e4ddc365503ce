"""uvicorn's HTTP protocol (httptools) with a bound on the request's head, and JSON for
the errors that it answers itself, before the app sees a request.

httptools sets no limit on the request line and headers: a client could send megabytes
of them, and uvicorn held them all before the app could refuse the request. Here a
request's head is held to ``max_head_bytes`` twice: the bytes that arrive while it is
incomplete are counted (so that memory stays bounded however slowly it comes), and the
parsed line and headers are summed when they are complete (a head that arrived in one
piece with its body); either way the answer is a 431 and the connection is closed. (h11,
uvicorn's other parser, has ``h11_max_incomplete_event_size`` for this.) A request that
httptools cannot parse gets uvicorn's 400, as JSON like every other error of the server.
"""

import json
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cnnkit.serve.settings import ServeSettings


def error_answer(status: int, message: str) -> bytes:
    """A complete HTTP answer: JSON with one message, and the connection closed."""
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "x-content-type-options: nosniff\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


class HeadLimitedProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that answers a head over ``max_head_bytes`` with a 431."""

    max_head_bytes = ServeSettings.max_header_bytes
    _arrived = 0  # bytes received while the head is incomplete
    _parsed = 0  # bytes of the head's line and headers, as parsed
    _reading_head = True  # between one request's end and the next one's headers
    _head_too_large = False

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            self._arrived += len(data)
        super().data_received(data)
        if self._reading_head and self._arrived > self.max_head_bytes:
            self.refuse(431, self._too_large())

    def on_url(self, url: bytes) -> None:
        self._parsed += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsed += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._parsed > self.max_head_bytes:
            # Stops the parser: uvicorn answers its error with send_400_response.
            self._head_too_large = True
            raise ValueError(self._too_large())
        self._reading_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head, self._arrived, self._parsed = True, 0, 0

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:
            self.refuse(431, self._too_large())
        else:
            self.refuse(400, f"not an HTTP request that the server reads ({msg})")

    def refuse(self, status: int, message: str) -> None:
        """Answer ``status`` (unless an answer is being sent) and close the connection."""
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(error_answer(status, message))
        self.transport.close()

    def _too_large(self) -> str:
        return f"request line and headers over the server's limit of {self.max_head_bytes:,} bytes"


def head_limited(max_head_bytes: int) -> type[HeadLimitedProtocol]:
    """The protocol class for uvicorn's ``http`` setting, with this bound."""
    return type("HeadLimitedProtocol", (HeadLimitedProtocol,), {"max_head_bytes": max_head_bytes})
