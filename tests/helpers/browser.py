"""The system's Chromium, which the test command installs (Debian's ``chromium``), and
the flags that keep a headless run to itself: no network beyond the page, no profile
sync, no first-run screens."""

import shutil

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
