"""What every request passes through before and after its route, as one plain ASGI
middleware (Starlette's ``BaseHTTPMiddleware`` costs a task per request):

- the bearer token, for ``/v1/*`` and ``/metrics`` (the page and its files are public
  and ask for the token in the browser); the scheme's name in any case (RFC 9110);
- the body's byte limit, by its Content-Length before a byte is read, and counted as
  it streams for a chunked body;
- an overload's 503, for a route that waits for the model while its queue is full:
  before the framework routes the request, so that turning it away costs a tenth of
  answering it (docs/serve.md);
- the security headers: ``nosniff`` on every answer, a strict Content-Security-Policy
  on everything but the framework's API docs page (which loads Swagger UI's scripts);
- the request's count and latency by route and status, for ``/metrics``;
- the last word on errors: an exception that escapes the app is logged with its
  traceback and answered as a JSON 500, and every error message is cut to
  ``MAX_MESSAGE`` characters, so that no answer echoes a client's megabytes.
"""

import asyncio
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cnnkit.errors import RequestTooLargeError
from cnnkit.serve.metrics import Metrics

log = logging.getLogger(__name__)
PROTECTED_PREFIXES = ("/v1/", "/metrics")
MAX_MESSAGE = 400  # characters of an error's message
INTERNAL_ERROR = "an internal error; its traceback is in the server's log"
CONTENT_LENGTH = re.compile(rb"[0-9]{1,18}")  # ASCII digits, few enough for an int64
RETRY_AFTER_S = 1  # what a 503 tells the client to wait
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
# Scripts, styles, fetches and images from this server only (images also as data: and
# blob: URLs, which the page makes from uploads and from the explain route's PNGs).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
PAGE_HEADERS = [
    *SECURITY_HEADERS,
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
]


def clipped(message: str) -> str:
    """An error's message as an answer carries it: at most ``MAX_MESSAGE`` characters."""
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def error_body(message: str) -> bytes:
    """An error answer's body as every route gives it: JSON with one message."""
    return json.dumps({"error": clipped(message)}).encode()


async def send_error(send: Send, status: int, message: str, headers: list | None = None) -> None:
    """An error answer as every route gives it: JSON with one message."""
    body = error_body(message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class Gate:
    """``app`` behind the token, the byte limit, the overload check, the security
    headers and the metrics."""

    app: ASGIApp
    metrics: Metrics
    token: str | None
    max_bytes: int
    # Why a request to this scope would be turned away with a 503 now, or None.
    overload: Callable[[Scope], str | None] = lambda scope: None
    overload_pause_s: float = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]  # what a request that fails before answering counts as
        answered: list[int | None] = [None]  # the status sent, once it is
        extra = SECURITY_HEADERS if scope["path"] in DOCS_PATHS else PAGE_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = answered[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is None and (busy := self.overload(scope)) is not None:
                await asyncio.sleep(self.overload_pause_s)
                refusal = 503, busy, [(b"retry-after", str(RETRY_AFTER_S).encode())]
            if refusal is not None:
                await send_error(send_with_headers, *refusal)
            else:
                await self.app(scope, self._limited(scope, receive), send_with_headers)
        except Exception:  # a bug: its traceback in the log, a JSON 500 to the client
            log.exception("%s %s failed", scope["method"], scope["path"])
            if answered[0] is None:
                await send_error(send_with_headers, 500, INTERNAL_ERROR)
        finally:
            self.metrics.observe_request(
                route_label(scope),
                scope["method"],
                status[0],
                time.perf_counter() - started,
            )

    def _refusal(self, scope: Scope) -> tuple[int, str, list] | None:
        """(status, message, headers) of a request turned away before its route runs."""
        headers = dict(scope["headers"])
        if self.token and scope["path"].startswith(PROTECTED_PREFIXES):
            # RFC 9110, Sec. 11.1: the scheme's name is case-insensitive, then white space.
            scheme, _, given = headers.get(b"authorization", b"").strip().partition(b" ")
            if scheme.lower() != b"bearer":
                return 401, "missing bearer token (Authorization: Bearer TOKEN)", _CHALLENGE
            if not hmac.compare_digest(given.strip(), self.token.encode()):
                return 401, "wrong bearer token", _CHALLENGE
        length = headers.get(b"content-length")
        if length is not None and CONTENT_LENGTH.fullmatch(length) is None:
            return 400, "a Content-Length that is not a whole number", []
        if length is not None and int(length) > self.max_bytes:
            return 413, _too_large_message(self.max_bytes), []
        return None

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        """``receive`` that raises a ``RequestTooLargeError`` once the body streamed
        past the limit (a chunked body has no Content-Length to check first)."""
        seen = [0]

        async def receive_limited() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_bytes:
                    raise RequestTooLargeError(_too_large_message(self.max_bytes))
            return message

        return receive_limited


_CHALLENGE = [(b"www-authenticate", b"Bearer")]


def route_label(scope: Scope) -> str:
    """The route's template (never the raw path, whose values are the client's to
    choose and would grow the metrics without end): a mount's prefix for its files."""
    route_path = getattr(scope.get("route"), "path", None)
    return route_path or scope.get("root_path") or "unmatched"


def _too_large_message(max_bytes: int) -> str:
    return f"request body over the server's limit of {max_bytes:,} bytes"
