"""Render an output folder's report.html with headless Chromium to <output>/report.png.

    python benchmarks/report_screenshot.py OUTPUT [--width 1200] [--height 1600] [--chromium /usr/bin/chromium]

The page is opened from disk (file://), as a person would; nothing is fetched from the network.
Prints the screenshot's path. Exits with a message when Chromium is not installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from facecluster.outputs.report import HEADLESS_CHROMIUM_FLAGS

DEFAULT_CHROMIUM = "/usr/bin/chromium"


def screenshot(page: Path, png: Path, chromium: str = DEFAULT_CHROMIUM, width: int = 1200, height: int = 1600) -> Path:
    """Render ``page`` headless into ``png`` (a throwaway browser profile, 60 s at most)."""
    with tempfile.TemporaryDirectory(prefix="facecluster-chromium-") as profile:
        command = [
            chromium,
            *HEADLESS_CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            page.resolve().as_uri(),
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
