"""Render an output folder's report.html with headless Chromium to <output>/report.png.

    python benchmarks/report_screenshot.py OUTPUT [--width 1200] [--height 1600] [--chromium /usr/bin/chromium]

The page is opened from disk (file://), as a person would; nothing is fetched from the network.
A width below 500 px (a phone: --width 400) is laid out at that width, in a frame.
Prints the screenshot's path. Exits with a message when Chromium is not installed.
"""

from __future__ import annotations

import argparse
import html
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from facecluster.outputs.report import HEADLESS_CHROMIUM_FLAGS

DEFAULT_CHROMIUM = "/usr/bin/chromium"


MIN_WINDOW_WIDTH = 500
"""Chromium's headless windows are at least this wide: a narrower screenshot is only cropped."""
FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="{src}" style="border:0;display:block;width:{width}px;height:{height}px"></iframe></body></html>"""


def screenshot(page: Path, png: Path, chromium: str = DEFAULT_CHROMIUM, width: int = 1200, height: int = 1600) -> Path:
    """Render ``page`` headless into ``png`` (a throwaway browser profile, 60 s at most).

    Below MIN_WINDOW_WIDTH the page is shown in a frame of ``width`` (as a phone would lay it out).
    """
    with tempfile.TemporaryDirectory(prefix="facecluster-chromium-") as profile:
        url = page.resolve().as_uri()
        if width < MIN_WINDOW_WIDTH:
            frame = Path(profile) / "frame.html"
            frame.write_text(FRAME.format(src=html.escape(url), width=width, height=height), encoding="utf-8")
            url = frame.as_uri()
        command = [
            chromium,
            *HEADLESS_CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            url,
        ]
        result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    if result.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium failed ({result.returncode}): {result.stderr.decode(errors='replace')[-2000:]}")
    return png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="a facecluster output folder holding report.html")
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=1600)
    parser.add_argument("--chromium", default=DEFAULT_CHROMIUM, help="Chromium executable")
    args = parser.parse_args()

    chromium = shutil.which(args.chromium)
    if chromium is None or not os.access(chromium, os.X_OK):
        sys.exit(
            f"Chromium not found at {args.chromium}; install it (Debian: apt-get install chromium) or pass --chromium"
        )
    page = args.output / "report.html"
    if not page.is_file():
        sys.exit(f"no report.html in {args.output}")
    png = args.output / "report.png"
    if png.exists():
        png.unlink()
    try:
        screenshot(page, png, chromium, args.width, args.height)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        sys.exit(str(error))
    print(png)


if __name__ == "__main__":
    main()
