"""Screenshots of 'facecluster review' for the README, from the example photos.

Scans examples/photos with the bundled models into a temporary output folder, names the three people
after their photos' LFW file names (Colin Powell, George W Bush, Serena Williams), starts the review
app and photographs the overview and Colin Powell's page, 1400 and 400 CSS pixels wide, each as tall
as its content, with headless chromium (Debian's chromium and chromium-driver, through Selenium). Then it
splits one of Colin Powell's faces off into a new person (as a grouping may split someone across poses)
and photographs the "Same person?" page asking about the two, 1400 pixels wide:

    docs/review-overview-1400.png  docs/review-overview-400.png
    docs/review-person-1400.png    docs/review-person-400.png
    docs/review-same-1400.png

Usage::

    python -m tools.review_screenshots [--photos examples/photos] [--docs docs]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from PIL import Image
from selenium import webdriver

from facecluster.library import Library
from facecluster.review.server import ReviewServer
from tests.chromium import chromium_driver

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = ("Colin Powell", "George W Bush", "Serena Williams")
SHOWN = "Colin Powell"
"""Whose page is photographed."""
WIDTHS = (1400, 400)
MAX_BYTES = 300_000
"""Largest PNG kept as it is; a larger one is reduced to 256 colours."""
WAIT = 20.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=ROOT / "examples" / "photos")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    args.docs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="facecluster-screenshots-") as tmp:
        output = Path(tmp) / "output"
        subprocess.run([sys.executable, "-m", "facecluster", "scan", str(args.photos), "-o", str(output)], check=True)
        library = Library.open(output)
        ids = name_people(library)
        server = ReviewServer(library, port=0, settle_delay=0.2)
        threading.Thread(target=server.serve, name="review-server", daemon=True).start()
        driver = chromium(Path(tmp) / "profile")
        try:
            driver.get(server.url)  # the token becomes the app's cookie
            base = f"http://127.0.0.1:{server.port}"
            for width in WIDTHS:
                shoot(driver, base + "/", width, args.docs / f"review-overview-{width}.png")
                shoot(driver, f"{base}/people/{ids[SHOWN]}", width, args.docs / f"review-person-{width}.png")
            new, first = split_one_off(library, ids[SHOWN])
            page = "/same" if first else f"/same?person={new}"  # their question, the first asked or not
            shoot(driver, base + page, WIDTHS[0], args.docs / f"review-same-{WIDTHS[0]}.png")
        finally:
            driver.quit()
            server.close()
    return 0


def name_people(library: Library) -> dict[str, int]:
    """Name each person after the LFW file names of their photos ('Colin_Powell_0001.jpg'); their ids by name."""
    ids: dict[str, int] = {}
    with library.corrections("name the example people") as edit:
        for person in library.people():
            votes = Counter(photo.relative.rsplit("_", 1)[0].replace("_", " ") for photo in person.photos)
            name, count = votes.most_common(1)[0]
            if name in PEOPLE and count > len(person.photos) / 2 and name not in ids:
                ids[name] = edit.name(person.id, name)
    if set(ids) != set(PEOPLE):
        raise SystemExit(f"expected the people {', '.join(PEOPLE)} in the example photos, found {sorted(ids)}")
    return ids


def split_one_off(library: Library, person: int) -> tuple[int, bool]:
    """Split ``person``'s last face off into a new person, once "same person?" asks about the two: the new
    person's id, and whether theirs is the first question of all."""
    face = library.person(person).faces[-1].face_id
    with library.corrections("split a face off, for the 'same person?' screenshot") as edit:
        new = edit.split(person, [face])
    question = f"p{min(person, new)}-p{max(person, new)}"
    asked = [q.id for q in library.suggestions(limit=None, person=new)]
    if question not in asked:
        raise SystemExit(f"no 'same person?' question about p{person} and p{new} (asked: {asked})")
    return new, library.suggestions(limit=1)[0].id == question


def chromium(profile: Path) -> webdriver.Chrome:
    return chromium_driver(profile, "--force-prefers-color-scheme=light")


def shoot(driver: webdriver.Chrome, url: str, width: int, path: Path) -> None:
    """Photograph ``url`` at ``width`` CSS pixels, as tall as the page, once every image has loaded."""
    viewport(driver, width, 800)
    driver.get(url)
    settle(driver)
    viewport(driver, width, 100)  # shorter than the content: the document's height is the content's
    height = driver.execute_script("return document.documentElement.scrollHeight")
    viewport(driver, width, height)
    settle(driver)
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    data = png(image)
    if len(data) > MAX_BYTES:
        data = png(image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
    path.write_bytes(data)
    print(f"{path}: {image.width} x {image.height}, {len(data) // 1000} kB")


def viewport(driver: webdriver.Chrome, width: int, height: int) -> None:
    """An exact viewport of ``width`` x ``height`` CSS pixels at one device pixel each."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def settle(driver: webdriver.Chrome) -> None:
    """Wait for the sections a person page fetches (suggestions, "same person?"), then for every image
    (lazy ones in view included)."""
    expected = driver.execute_script(
        "return Promise.all(Array.from(document.querySelectorAll('section[data-src]'),"
        " s => fetch(s.dataset.src).then(r => r.text()).then(t => t.includes('class=\"question'))))"
    )
    done = (
        "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
        " && Array.from(document.querySelectorAll('section[data-src]'),"
        " s => s.querySelector('.question') !== null).join() === arguments[0].join()"
    )
    deadline = time.monotonic() + WAIT
    while not driver.execute_script(done, expected):
        if time.monotonic() > deadline:
            raise SystemExit(f"{driver.current_url}: the page did not finish loading within {WAIT:.0f} s")
        time.sleep(0.05)
    time.sleep(0.2)  # layout after the last image


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


if __name__ == "__main__":
    sys.exit(main())
