"""Pictures of HTML pages by headless Chromium, for reviewers (``make samples``, docs/samples/).

No browser library: Chromium's own ``--headless --screenshot``. Debian's ``chromium`` package
(``apt-get install -y chromium``) or any Chromium/Chrome named by ``KOOLLE_CHROMIUM``. The page is
read from a local file with the network off and a throw-away profile, so nothing is left behind.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INSTALL = "apt-get install -y chromium (or set KOOLLE_CHROMIUM to a Chromium/Chrome binary)"


def chromium() -> str | None:
    """The Chromium binary: ``KOOLLE_CHROMIUM``, else Debian's ``chromium`` or a Chrome on PATH."""
    configured = os.environ.get("KOOLLE_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html: Path, png: Path, width: int = 820, height: int = 1000) -> None:
    """Photograph the local page ``html`` at ``width`` x ``height`` CSS pixels into ``png``."""
    binary = chromium()
    if binary is None:
        raise RuntimeError(f"chromium not found: {INSTALL}")
    with tempfile.TemporaryDirectory(prefix="koolle-chromium-") as profile:
        subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",  # root in a container has no user namespace for Chromium's sandbox
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={width},{height}",
                html.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def png_size(png: Path) -> tuple[int, int]:
    """(width, height) of a PNG file, read from its IHDR chunk; ValueError when it is no PNG."""
    head = png.read_bytes()[:24]
    if head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise ValueError(f"{png.name} is not a PNG image")
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)
