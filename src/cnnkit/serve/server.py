"""``run_server``: a trained run behind uvicorn until SIGTERM or SIGINT.

The port is bound first and the model process started next, so that a port in use
or a bad checkpoint is one error line before anything is served. uvicorn drains on
either signal: it stops accepting connections, lets the requests in flight finish (the
batcher answers every queued image), runs the app's shutdown and returns; then the
model process is closed. uvicorn then raises the
signal again under the handler that was there before it started; ``stop_quietly``
makes that a no-op, so that a drained server returns and its process exits 0, as a
service manager expects of a clean stop.
"""

import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from cnnkit.errors import ConfigError
from cnnkit.serve.app import create_app
from cnnkit.serve.model_process import ModelProcess
from cnnkit.serve.protocol import head_limited
from cnnkit.serve.settings import ServeSettings
from cnnkit.serve.worker import freeze_imports

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
DRAIN_GRACE_S = 5.0  # how much longer than the batcher's timeout a drain may take


@contextmanager
def stop_quietly() -> Iterator[None]:
    previous = {sig: signal.signal(sig, lambda signum, frame: None) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port``; a ``ConfigError`` saying why not."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None


def run_server(
    checkpoint: Path,
    settings: ServeSettings,
    device: str = "auto",
    on_ready: Callable[[dict], None] | None = None,
    index: Path | None = None,
) -> None:
    """Serve the run at ``checkpoint`` (and the search ``index`` built with it) on
    ``settings.host``:``settings.port`` until stopped; ``on_ready`` gets the model's
    description once it answers."""
    sock = listen(settings.host, settings.port)
    model = ModelProcess.start(checkpoint, device, settings.threads, index)
    try:
        if on_ready is not None:
            on_ready({**model.description, "search": model.index})
        app = create_app(model, settings)
        freeze_imports()
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            access_log=False,  # a line per request would cost more than the prediction
            http=head_limited(settings.max_header_bytes),
            timeout_graceful_shutdown=int(settings.timeout_s + DRAIN_GRACE_S),
        )
        with stop_quietly():
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        model.close()
        sock.close()
