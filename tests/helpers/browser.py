"""The system's Chromium, which the test command installs (Debian's ``chromium``), and
the flags that keep a headless run to itself: no network beyond the page, no profile
sync, no first-run screens."""

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed (CI installs it: apt-get install -y chromium)"
    return path


@contextlib.contextmanager
def chromium_browser(profile: Path, **options: Any) -> Iterator[Any]:
    """The system's Chromium, headless, with a fresh profile in ``profile`` (Playwright's
    persistent context; ``options`` as it takes them, e.g. ``viewport``), closed after."""
    from playwright.sync_api import sync_playwright  # the test extra; no skipping

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=chromium(), headless=True, args=CHROMIUM_FLAGS[1:], **options
        )
        try:
            yield browser
        finally:
            browser.close()


def page_recording_errors(browser: Any, failed_requests: bool = False) -> tuple[Any, list[str]]:
    """A new page of ``browser`` and the list its console errors and uncaught exceptions
    are added to (with ``failed_requests``, the start of each failed request's URL too)."""
    page, errors = browser.new_page(), []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    if failed_requests:
        page.on("requestfailed", lambda request: errors.append(request.url[:80]))
    return page, errors
