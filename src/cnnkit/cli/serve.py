"""The ``serve`` command: a trained run behind an HTTP API and a page (docs/serve.md)."""

from pathlib import Path

import click

from cnnkit.cli.options import FiniteFloat, checkpoint_argument
from cnnkit.config import DEVICES
from cnnkit.serve.settings import TOKEN_ENV, ServeSettings, exposure_warning

DEFAULTS = ServeSettings()


@click.command()
@checkpoint_argument()
@click.option(
    "--index",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A search index built with CHECKPOINT (cnnkit index build): adds /v1/search [none].",
)
@click.option("--host", default=DEFAULTS.host, show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=DEFAULTS.port,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--token",
    envvar=TOKEN_ENV,
    help=f"Bearer token required by /v1/* and /metrics [${TOKEN_ENV}; none].",
)
@click.option(
    "--max-batch",
    default=DEFAULTS.max_batch,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images in one forward pass (1: no batching).",
)
@click.option(
    "--max-wait-ms",
    default=DEFAULTS.max_wait_ms,
    show_default=True,
    type=FiniteFloat(min=0),
    help="Milliseconds a batch's first image waits for more.",
)
@click.option(
    "--max-queue",
    default=DEFAULTS.max_queue,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images waiting for the model before requests get 503.",
)
@click.option(
    "--busy-pause-ms",
    default=DEFAULTS.busy_pause_ms,
    show_default=True,
    type=FiniteFloat(min=0),
    help="Milliseconds a 503 for a full queue is held before it is sent.",
)
@click.option(
    "--timeout",
    "timeout_s",
    default=DEFAULTS.timeout_s,
    show_default=True,
    type=FiniteFloat(min=0, min_open=True),
    help="Seconds an image may wait for the model before its request gets 504.",
)
@click.option(
    "--max-bytes",
    default=DEFAULTS.max_bytes,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest request body in bytes (413 beyond).",
)
@click.option(
    "--max-images",
    default=DEFAULTS.max_images,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images in one request (400 beyond).",
)
@click.option(
    "--max-request-pixels",
    default=DEFAULTS.max_request_pixels,
    show_default=True,
    type=click.IntRange(min=1),
    help="Pixels that a request's image headers claim, all together (413 beyond).",
)
@click.option(
    "--threads",
    default=DEFAULTS.threads,
    show_default=True,
    type=click.IntRange(min=1),
    help="PyTorch threads of the model process (the HTTP process keeps a core).",
)
@click.option(
    "--device", type=click.Choice(DEVICES), default="auto", show_default=True, help="Model device."
)
def serve(checkpoint: Path, index: Path | None, device: str, **options) -> None:
    """Serve CHECKPOINT: a prediction API at /v1/ and a page at / (Ctrl-C or SIGTERM stops it)."""
    from cnnkit.errors import import_extra

    for module in ("fastapi", "uvicorn", "python_multipart"):
        import_extra(module, "serve", "cnnkit serve")
    from cnnkit.serve.server import run_server

    settings = ServeSettings(**options)
    warning = exposure_warning(settings)
    if warning is not None:
        click.secho(f"cnnkit: WARNING: {warning}", err=True, fg="red", bold=True)
    url = f"http://{settings.host}:{settings.port}"

    def ready(model: dict) -> None:
        search = model["search"]
        items = f", searching {search['items']:,} items" if search else ""
        click.echo(
            f"cnnkit: serving {model['model']} ({model['dataset']}, {len(model['classes']):,} "
            f"classes{items}) at {url}/ (the page), {url}/docs (the API)",
            err=True,
        )

    run_server(checkpoint, settings, device, ready, index)
    click.echo("cnnkit: server stopped; requests in flight were answered", err=True)
