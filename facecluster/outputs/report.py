"""report.html: a self-contained page showing who was found in which photos.

The page is opened straight from disk: no server, no network, no script. Styling is inline,
face thumbnails are files under ``thumbs/`` next to the page, and each thumbnail links to its
original photo with a ``file://`` URL. Every piece of outside text (file names, paths, EXIF
values, person keys, reasons, summary values) is HTML-escaped, and a Content-Security-Policy
forbids scripts altogether, so a hostile file name shows as text and nothing else.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from facecluster.outputs.files import display_text, write_atomic
from facecluster.outputs.people_json import sort_faces
from facecluster.types import FaceRecord, Photo, ScanOutcome

FILE_NAME = "report.html"
THUMBS = "thumbs"
_THUMB_NAME = re.compile(r"^\d+\.jpg$")
_TIME_KEY = "seconds"
_NOT_HTML = re.compile(
    "[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef"
    + "".join(f"{chr(plane | 0xFFFE)}{chr(plane | 0xFFFF)}" for plane in range(0, 0x110000, 0x10000))
    + "]"
)
"""Characters that make an HTML document invalid wherever they appear: controls and noncharacters."""

_CSS = """
:root{color-scheme:light dark;--bg:#f7f7f5;--fg:#1d1d1f;--muted:#6b6b70;--card:#fff;--line:#e2e2e0;--accent:#2f6fde}
@media (prefers-color-scheme:dark){:root{--bg:#18181a;--fg:#ececef;--muted:#9a9aa2;--card:#232326;--line:#35353a;
--accent:#7aa7ff}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
header,main{max-width:1400px;margin:0 auto;padding:16px 24px}
header{border-bottom:1px solid var(--line)}
h1{font-size:22px;margin:4px 0 2px}h2{font-size:18px;margin:0}h3{font-size:16px;margin:0}
.root{color:var(--muted);word-break:break-all;margin:0 0 10px}
.stats{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0;padding:0;list-style:none}
.stats li{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:6px 12px}
.stats b{font-size:18px;margin-right:4px}
.meta li{font-size:13px;color:var(--muted)}
nav{display:flex;flex-wrap:wrap;gap:6px 12px;font-size:13px;margin:8px 0}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin:16px 0}
.info{color:var(--muted);font-size:13px;margin:2px 0 10px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(96px,1fr));gap:6px}
.grid a{display:block;aspect-ratio:1;border-radius:6px;overflow:hidden;background:var(--line)}
.grid img{display:block;width:100%;height:100%;object-fit:cover}
.grid a.low{opacity:.55}
.grid a:hover{outline:2px solid var(--accent);outline-offset:1px}
ul.files{columns:3 320px;margin:0;padding-left:18px;font-size:13px;word-break:break-all}
table{border-collapse:collapse;font-size:13px;width:100%}
td,th{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);word-break:break-all;vertical-align:top}
.empty{color:var(--muted);font-style:italic}
"""
_CSP = "default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


HEADLESS_CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
)
"""How the tests and benchmarks/report_screenshot.py open the report in Debian's chromium
(offline, no background traffic, a fresh profile added by the caller)."""


def write_report(outcome: ScanOutcome, output: Path) -> Path:
    """Write ``output/report.html`` (atomically) and its face thumbnails; return the page's path.

    Thumbnails go to ``output/thumbs/<face_id>.jpg``. Only missing ones (or ones whose size
    differs from the face's thumbnail) are written; thumbnails of faces that are no longer in
    the outcome are deleted.
    """
    output = Path(output)
    page = render_report(outcome, _write_thumbs(outcome, output / THUMBS))
    path = output / FILE_NAME
    write_atomic(path, page.encode("utf-8"))
    return path


def render_report(outcome: ScanOutcome, thumbnails: set[int]) -> str:
    """The report page as text; faces whose id is in ``thumbnails`` show ``thumbs/<id>.jpg``."""
    people = outcome.people
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>facecluster: {_e(Path(outcome.root).name or str(outcome.root))}</title>",
        f"<style>{_CSS}</style></head><body>",
        _header(outcome),
        "<main>",
    ]
    for person in people:
        faces = sort_faces(person.faces)
        photos = person.photos
        parts.append(
            f'<section id="p-{_e(person.album)}"><h2>{_e(person.name or person.album)}</h2>'
            f'<p class="info">{_plural(len(photos), "photo")} · {_plural(len(faces), "face")} · '
            f"{_e(_date_range(photos))}</p>"
        )
        parts.append(_grid(faces, thumbnails))
        parts.append("</section>")

    unsorted = sort_faces(outcome.unsorted)
    parts.append(
        '<section id="unsorted"><h2>Unsorted faces</h2>'
        f'<p class="info">{_plural(len(unsorted), "face")} that belong to no person '
        "(seen once, too small or too blurred; dimmed ones took no part in grouping)</p>"
    )
    parts.append(_grid(unsorted, thumbnails) if unsorted else '<p class="empty">None.</p>')
    parts.append("</section>")

    no_faces = sorted(outcome.no_faces, key=lambda photo: photo.relative)
    parts += _listing(
        "no-faces",
        "Photos with no face",
        _plural(len(no_faces), "photo"),
        ('<ul class="files">', "</ul>"),
        [f'<li><a href="{_e(_uri(photo.path))}">{_e(photo.relative)}</a></li>' for photo in no_faces],
    )
    parts += _listing(
        "missing",
        "Missing photos",
        _plural(len(outcome.missing), "photo")
        + " no longer found: kept with their faces, names and corrections, out of the albums, until"
        " found again or 'facecluster prune'",
        ('<ul class="files">', "</ul>"),
        [f"<li>{_e(relative)}</li>" for relative in outcome.missing],
    )
    skipped = sorted(outcome.skipped, key=lambda item: item.relative)
    parts += _listing(
        "skipped",
        "Skipped files",
        _plural(len(skipped), "file"),
        ("<table><thead><tr><th>File</th><th>Reason</th></tr></thead><tbody>", "</tbody></table>"),
        [f"<tr><td>{_e(item.relative)}</td><td>{_e(item.reason)}</td></tr>" for item in skipped],
    )
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _listing(anchor: str, title: str, info: str, wrapper: tuple[str, str], rows: list[str]) -> list[str]:
    """A report section listing files: ``rows`` inside ``wrapper``, or 'None.' when there are none."""
    body = [wrapper[0], *rows, wrapper[1]] if rows else ['<p class="empty">None.</p>']
    return [f'<section id="{anchor}"><h2>{title}</h2><p class="info">{info}</p>', *body, "</section>"]


def _header(outcome: ScanOutcome) -> str:
    summary = outcome.stats.as_dict()
    counts = [
        ("photos", summary.pop("photos")),
        ("faces", summary.pop("faces")),
        ("people", summary.pop("people")),
        ("unsorted", summary.pop("unsorted")),
        ("no face", summary.pop("no_faces")),
        ("skipped", summary.pop("skipped")),
        ("missing", summary.pop("missing")),
    ]
    stats = "".join(f"<li><b>{_e(_value(value))}</b>{_e(label)}</li>" for label, value in counts)
    meta = "".join(
        f"<li>{_e(_label(str(key)))}: <b>{_e(_value(value, key=str(key)))}</b></li>" for key, value in summary.items()
    )
    nav = "".join(
        f'<a href="#p-{_e(person.album)}">{_e(person.name or person.album)} ({len(person.faces)})</a>'
        for person in outcome.people
    )
    return (
        f"<header><h1>facecluster report</h1>"
        f'<p class="root">{_e(str(outcome.root))}</p>'
        f'<ul class="stats">{stats}</ul>'
        + (f'<ul class="stats meta">{meta}</ul>' if meta else "")
        + f'<nav>{nav}<a href="#unsorted">unsorted</a><a href="#no-faces">no face</a>'
        f'<a href="#missing">missing</a><a href="#skipped">skipped</a></nav></header>'
    )


def _grid(faces: list[FaceRecord], thumbnails: set[int]) -> str:
    items = ['<div class="grid">']
    for face in faces:
        photo = face.photo
        title = f"face {int(face.face_id)} · {photo.relative}" + (f" · {photo.taken}" if photo.taken else " · undated")
        if not face.usable:
            title += " · not used for grouping"
        low = "" if face.usable else ' class="low"'
        image = ""
        if face.face_id in thumbnails:
            image = f'<img src="{THUMBS}/{int(face.face_id)}.jpg" loading="lazy" alt="">'
        items.append(f'<a href="{_e(_uri(photo.path))}" title="{_e(title)}"{low}>{image}</a>')
    items.append("</div>")
    return "\n".join(items)


def _write_thumbs(outcome: ScanOutcome, folder: Path) -> set[int]:
    """Bring ``folder`` up to date; return the ids of the faces that have a thumbnail there."""
    folder.mkdir(parents=True, exist_ok=True)
    faces = [face for person in outcome.people for face in person.faces] + list(outcome.unsorted)
    wanted: set[str] = set()
    present: set[int] = set()
    for face in faces:
        thumbnail = face.thumbnail  # read once: it may come from the index on demand
        if not thumbnail:
            continue
        name = f"{int(face.face_id)}.jpg"
        wanted.add(name)
        present.add(face.face_id)
        path = folder / name
        try:
            if path.stat().st_size == len(thumbnail):
                continue
        except FileNotFoundError:
            pass
        write_atomic(path, thumbnail, sync=False)
    for child in folder.iterdir():
        stale = _THUMB_NAME.match(child.name) and child.name not in wanted
        leftover = child.name.startswith(".") and child.name.endswith(".tmp")
        if (stale or leftover) and child.is_file():
            child.unlink(missing_ok=True)
    return present


def _date_range(photos: list[Photo]) -> str:
    dates = sorted(photo.taken[:10] for photo in photos if photo.taken)
    undated = len(photos) - len(dates)
    if not dates:
        return "no dates"
    text = dates[0] if dates[0] == dates[-1] else f"{dates[0]} \u2013 {dates[-1]}"
    return text + (f" (+{undated} undated)" if undated else "")


def _value(value: object, key: str = "") -> str:
    if isinstance(value, float):
        if key == _TIME_KEY:
            return _duration(value)
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        if key == _TIME_KEY:
            return _duration(float(value))
        return f"{value:,}"
    return str(value)


def _label(key: str) -> str:
    if key == _TIME_KEY:
        return "time"
    return key.replace("_", " ")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {rest:02d} s"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _uri(path: Path) -> str:
    try:
        return Path(path).as_uri()
    except ValueError:  # a relative path: no link
        return "#"


def _e(text: object) -> str:
    """Outside text made safe for HTML text and attribute values.

    Undecodable file-name bytes and the characters HTML does not allow in a document (control
    characters other than tab, line feed, form feed and carriage return; noncharacters) become U+FFFD.
    """
    return html.escape(_NOT_HTML.sub("\ufffd", display_text(str(text))), quote=True)
