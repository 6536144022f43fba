"""Debian's chromium driven through Selenium and Debian's chromium-driver, offline, for the review app's tests,
tools/review_screenshots.py and benchmarks/review_scale.py. Selenium is given both programs, so it never
downloads a browser or a driver."""

from __future__ import annotations

from pathlib import Path

from facecluster.outputs.report import HEADLESS_CHROMIUM_FLAGS

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = tuple(flag for flag in HEADLESS_CHROMIUM_FLAGS if flag.split("=")[0] not in ("--virtual-time-budget",))
"""The report's: headless and no background traffic; without a virtual time budget (a driven page runs in real time)."""


def chromium_driver(profile: Path, *flags: str):
    """A headless chromium with a fresh profile in ``profile`` and any more ``flags`` (a selenium Chrome)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, *flags, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
