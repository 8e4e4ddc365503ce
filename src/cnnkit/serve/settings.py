"""The server's settings, each default defined once, and what binding to a host exposes."""

import ipaddress
from dataclasses import dataclass

TOKEN_ENV = "CNNKIT_SERVE_TOKEN"  # where the bearer token is read from when --token is not given


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"  # loopback: nothing outside this machine can reach it unless told
    port: int = 8000
    token: str | None = None  # bearer token for /v1/* and /metrics; None: no authentication
    max_batch: int = 32  # images in one forward pass
    # How long the first image of a batch waits for more. No wait by default: while the
    # model works on one batch the next one gathers by itself, and a wait only added
    # its length to every answer at low load (docs/serve.md).
    max_wait_ms: float = 0.0
    max_queue: int = 256  # images waiting for the model; beyond it: 503
    # How long an overload's 503 is held before it is sent. Clients that retry a 503 at
    # once, ignoring its Retry-After, otherwise kept the event loop so busy turning them
    # away that the accepted requests' p99 tripled (docs/serve.md); held, each costs a
    # timer, and the accepted requests' tail stays short.
    busy_pause_ms: float = 50.0
    timeout_s: float = 10.0  # how long an image may wait for the model; beyond it: 504
    max_bytes: int = 8 * 1024 * 1024  # request body, checked before anything is decoded
    max_images: int = 64  # images in one request
    # Parts of a multipart form, whatever their names: the parser stops at the first one
    # beyond it (a form of a million empty parts is a few megabytes).
    max_parts: int = 128
    # Pixels that the headers of a request's images claim, all together (each image is
    # also held to the decoder's own limit, 89,478,485): a request of many images that
    # each claim nearly that much is refused before the model process decodes any.
    max_request_pixels: int = 100_000_000
    # Pixels claimed by the images of one batch: the batcher closes a batch before it
    # exceeds them (a batch always takes its first image), so that a few large images
    # are decoded in batches of their own rather than beside every small one.
    max_batch_pixels: int = 100_000_000
    # Bytes of a request's line and headers (431 beyond), counted as they arrive.
    max_header_bytes: int = 64 * 1024
    # torch's threads in the model process: of two cores, the HTTP process needs one.
    threads: int = 1


def is_loopback(host: str) -> bool:
    """Whether ``host`` can be reached from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def exposure_warning(settings: ServeSettings) -> str | None:
    """The warning to shout when the server is reachable from other machines and
    anyone who reaches it may use it."""
    if is_loopback(settings.host) or settings.token:
        return None
    return (
        f"serving on {settings.host}, beyond this machine, WITHOUT A TOKEN: anyone who can "
        f"reach port {settings.port} can use the model; set --token or ${TOKEN_ENV}"
    )
