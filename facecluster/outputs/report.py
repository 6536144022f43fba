"""report.html: a self-contained page showing who was found in which photos.

The page is opened straight from disk: no server, no network, no script. Styling is inline,
face thumbnails are files under ``thumbs/`` next to the page, and each thumbnail links to its
original photo with a ``file://`` URL. Every piece of outside text (file names, paths, EXIF
values, person keys, reasons, summary values) is HTML-escaped, and a Content-Security-Policy
forbids scripts altogether, so a hostile file name shows as text and nothing else.

A reader finds everyone at a glance in the header's strip (one face per person), reads every
face's id (f12) under its thumbnail and every person's id (p7) beside their name, and fixes the
grouping by copying a command from the person's section: a ``<code>`` block that one click or tap
selects whole (there is no script, so no copy button). The commands name the output folder and
quote names for a POSIX shell, so they work as pasted. The page stays readable 400 px wide.
"""

from __future__ import annotations

import html
import os
import re
import shlex
from pathlib import Path

from facecluster.outputs.files import display_text, write_atomic
from facecluster.outputs.people_json import sort_faces
from facecluster.types import FaceRecord, Person, Photo, ScanOutcome

FILE_NAME = "report.html"
THUMBS = "thumbs"
LIBRARY_FILE = "library-id.txt"
"""In ``thumbs/``: the id of the index its thumbnails came from."""
_THUMB_NAME = re.compile(r"^\d+\.jpg$")
_TIME_KEY = "seconds"
_NOT_HTML = re.compile(
    "[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef"
    + "".join(f"{chr(plane | 0xFFFE)}{chr(plane | 0xFFFF)}" for plane in range(0, 0x110000, 0x10000))
    + "]"
)
"""Characters that make an HTML document invalid wherever they appear: controls and noncharacters."""

_CSS = """
:root{color-scheme:light dark;--bg:#f7f7f5;--fg:#1d1d1f;--muted:#6b6b70;--card:#fff;--line:#e2e2e0;--accent:#2f6fde;
--code:#f0f0ee}
@media (prefers-color-scheme:dark){:root{--bg:#18181a;--fg:#ececef;--muted:#9a9aa2;--card:#232326;--line:#35353a;
--accent:#7aa7ff;--code:#2c2c30}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif;overflow-wrap:anywhere}
header,main{max-width:1400px;margin:0 auto;padding:16px 24px}
header{border-bottom:1px solid var(--line)}
h1{font-size:22px;margin:4px 0 2px}h2{font-size:18px;margin:0}h3{font-size:16px;margin:0}
.root{color:var(--muted);word-break:break-all;margin:0 0 10px}
.stats{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0;padding:0;list-style:none}
.stats li{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:6px 12px}
.stats b{font-size:18px;margin-right:4px}
.meta li{font-size:13px;color:var(--muted)}
.strip{display:flex;gap:10px;overflow-x:auto;overscroll-behavior-x:contain;margin:10px 0 4px;padding:2px 2px 8px}
.strip a{flex:0 0 auto;width:88px;font-size:12px;line-height:1.3;font-weight:600;text-align:center;color:var(--fg);
overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.strip i{display:block;width:72px;height:72px;margin:0 auto 3px;border-radius:50%;background:var(--line) center/cover}
.strip small{display:block;overflow:hidden;text-overflow:ellipsis;color:var(--muted);font-weight:400}
.strip a:hover i{outline:2px solid var(--accent);outline-offset:1px}
nav{display:flex;flex-wrap:wrap;gap:6px 12px;font-size:13px;margin:8px 0}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
section{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;margin:16px 0}
.head{display:flex;flex-wrap:wrap;align-items:baseline;gap:2px 10px}
.ids{color:var(--muted);font-size:13px}
.info{color:var(--muted);font-size:13px;margin:2px 0 10px}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.id,.cmd{-webkit-user-select:all;user-select:all}
.hint{color:var(--muted);font-size:13px;margin:6px 0}
.ids .id{color:var(--fg);background:var(--code);border-radius:4px;padding:0 4px}
details.fix{font-size:13px;margin:0 0 10px;color:var(--muted)}
details.fix summary{cursor:pointer}
.fix div{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:4px 10px;align-items:baseline;margin:6px 0 0}
.cmd{display:block;background:var(--code);color:var(--fg);border-radius:4px;padding:2px 6px;white-space:pre-wrap;
cursor:text}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(96px,1fr));gap:6px}
.grid a{display:block;min-width:0;color:var(--muted);text-align:center;
font:11px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.grid img,.grid i{display:block;width:100%;aspect-ratio:1;object-fit:cover;border-radius:6px;background:var(--line)}
.grid a.low{opacity:.55}
.grid a:hover{text-decoration:none;color:var(--accent)}
.grid a:hover>*{outline:2px solid var(--accent);outline-offset:1px}
ul.files{columns:3 320px;margin:0;padding-left:18px;font-size:13px;word-break:break-all}
table{border-collapse:collapse;font-size:13px;width:100%}
td,th{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);word-break:break-all;vertical-align:top}
.empty{color:var(--muted);font-style:italic}
@media (max-width:600px){
body{font-size:14px}
header,main{padding:10px 10px}
h1{font-size:19px}
.stats{gap:5px}.stats li{padding:3px 8px}.stats b{font-size:16px}
section{padding:10px;margin:10px 0}
.grid{grid-template-columns:repeat(auto-fill,minmax(68px,1fr));gap:4px}
.strip{gap:6px}.strip a{width:64px}.strip i{width:56px;height:56px}
.fix div{grid-template-columns:minmax(0,1fr);gap:1px 0}
ul.files{padding-left:14px}
td,th{padding:3px 4px}
}
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

    Thumbnails go to ``output/thumbs/<face_id>.jpg``. Only missing (or empty) ones are written: face
    ids are never reused and a face's thumbnail never changes, so one already there is kept without
    reading the face's thumbnail from the index. Thumbnails of faces that are no longer in the
    outcome are deleted. The page's commands name ``output`` (made absolute) with ``-o``.
    """
    output = Path(output)
    page = render_report(outcome, _write_thumbs(outcome, output / THUMBS), output=Path(os.path.abspath(output)))
    path = output / FILE_NAME
    write_atomic(path, page.encode("utf-8"))
    return path


def render_report(outcome: ScanOutcome, thumbnails: set[int], output: Path | None = None) -> str:
    """The report page as text; faces whose id is in ``thumbnails`` show ``thumbs/<id>.jpg``.

    ``output`` is the output folder the page's commands name (``-o``); without it they name none
    (the CLI's default, ``facecluster-output`` in the current folder).
    """
    people = outcome.people
    unsorted = sort_faces(outcome.unsorted)
    commands = _Commands(output)
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>facecluster: {_e(Path(outcome.root).name or str(outcome.root))}</title>",
        f"<style>{_CSS}</style></head><body>",
        _header(outcome, thumbnails),
        "<main>",
    ]
    for position, person in enumerate(people):
        faces = sort_faces(person.faces)
        photos = person.photos
        key = f"p{int(person.id)}"
        # Another person (for the merge example) and a face that is not this person's (for the move example).
        other = people[position + 1] if position + 1 < len(people) else people[position - 1] if position else None
        outside = unsorted[0] if unsorted else _best(other.faces, thumbnails) if other else None
        parts.append(
            f'<section id="{key}"><div class="head"><h2>{_e(person.name or person.album)}</h2>'
            f'<span class="ids"><code class="id">{key}</code> · folder people/{_e(person.album)}</span></div>'
            f'<p class="info">{_plural(len(photos), "photo")} · {_plural(len(faces), "face")} · '
            f"{_e(_date_range(photos))}</p>"
        )
        parts.append(commands.person(person, faces, _best(faces, thumbnails), other, outside))
        parts.append(_grid(faces, thumbnails))
        parts.append("</section>")

    parts.append(
        '<section id="unsorted"><div class="head"><h2>Unsorted faces</h2></div>'
        f'<p class="info">{_plural(len(unsorted), "face")} that belong to no person '
        "(seen once, too small or too blurred; dimmed ones took no part in grouping)</p>"
    )
    if unsorted:
        parts.append(commands.unsorted(unsorted[0], people[0] if people else None))
        parts.append(_grid(unsorted, thumbnails))
    else:
        parts.append('<p class="empty">None.</p>')
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


def _header(outcome: ScanOutcome, thumbnails: set[int]) -> str:
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
    return "".join(
        [
            "<header><h1>facecluster report</h1>",
            f'<p class="root">{_e(str(outcome.root))}</p>',
            f'<ul class="stats">{stats}</ul>',
            f'<ul class="stats meta">{meta}</ul>' if meta else "",
            _strip(outcome.people, thumbnails),
            '<p class="hint">Each face shows its id (f12) and each person theirs (p7). To fix the grouping, open '
            "a section's <i>Fix</i>: a click or tap selects a whole command; copy it into a terminal and put in "
            "the ids you mean.</p>",
            '<nav><a href="#unsorted">unsorted</a><a href="#no-faces">no face</a><a href="#missing">missing</a>'
            '<a href="#skipped">skipped</a></nav></header>',
        ]
    )


def _strip(people: list[Person], thumbnails: set[int]) -> str:
    """One face per person, in the people's order, each linking to the person's section; scrolls sideways.

    The faces are CSS backgrounds rather than ``<img>``: every ``<img>`` of the page is one face of
    the sections below.
    """
    if not people:
        return ""
    items = ['<div class="strip">']
    for person in people:
        key = f"p{int(person.id)}"
        best = _best(person.faces, thumbnails)
        style = f' style="background-image:url({THUMBS}/{int(best.face_id)}.jpg)"' if best else ""
        count = _plural(len(person.faces), "face")
        caption = f"{_e(person.name)}<small>{key} · {count}</small>" if person.name else f"{key}<small>{count}</small>"
        items.append(f'<a href="#{key}" title="{_e(person.name or person.album)}"><i{style}></i>{caption}</a>')
    items.append("</div>")
    return "".join(items)


def _best(faces: list[FaceRecord], thumbnails: set[int]) -> FaceRecord | None:
    """The face that shows a person best: usable ones first, then one with a thumbnail, then the largest
    size x score (the lowest id among equals); None without faces."""
    return max(
        faces,
        key=lambda f: (f.usable, f.face_id in thumbnails, f.size * f.score, -int(f.face_id)),
        default=None,
    )


def _grid(faces: list[FaceRecord], thumbnails: set[int]) -> str:
    """Each face's thumbnail (a grey square without one) with its id under it, linking to its photo.

    The id is text inside the link rather than an element of its own: a page of 50,000 faces stays
    at two elements a face, which is what decides how fast a browser lays the page out.
    """
    items = ['<div class="grid">']
    for face in faces:
        photo = face.photo
        key = f"f{int(face.face_id)}"
        title = f"face {key} · {photo.relative}" + (f" · {photo.taken}" if photo.taken else " · undated")
        if not face.usable:
            title += " · not used for grouping"
        low = "" if face.usable else ' class="low"'
        image = "<i></i>"
        if face.face_id in thumbnails:
            image = f'<img src="{THUMBS}/{int(face.face_id)}.jpg" loading="lazy" alt="">'
        items.append(f'<a href="{_e(_uri(photo.path))}" title="{_e(title)}"{low}>{image}{key}</a>')
    items.append("</div>")
    return "\n".join(items)


class _Commands:
    """The fixing commands shown in the page, ready to paste into a POSIX shell."""

    def __init__(self, output: Path | None) -> None:
        self._output = None if output is None else _quote(str(output))

    def line(self, command: str, *arguments: str, flags: tuple[str, ...] = ()) -> str:
        """``facecluster COMMAND ARGUMENTS FLAGS -o OUTPUT``; the arguments are already quoted.

        An argument that starts with '-' (a name) would read as an option: then the options come first, then '--'.
        """
        options = [*flags, *([] if self._output is None else ["-o", self._output])]
        if any(argument.lstrip("'\"").startswith("-") for argument in arguments):
            return " ".join(["facecluster", command, *options, "--", *arguments])
        return " ".join(["facecluster", command, *arguments, *options])

    def person(
        self,
        person: Person,
        faces: list[FaceRecord],
        best: FaceRecord | None,
        other: Person | None,
        outside: FaceRecord | None,
    ) -> str:
        key = f"p{int(person.id)}"
        rest = [f"f{int(face.face_id)}" for face in faces if face is not best]
        rows = []
        if person.name:
            rows.append(("rename", self.line("name", key, _quote(person.name))))
        else:
            rows.append(("name", self.line("name", key, '"NAME"')))
        if outside is not None:
            rows.append(("add faces", self.line("move", f"f{int(outside.face_id)}", key)))
        if rest:
            rows.append(("split off someone else", self.line("split", key, *rest[-min(2, len(faces) - 1) :])))
        if best is not None:
            forget = rest[-1] if rest else f"f{int(best.face_id)}"
            rows.append(("not a face, or a stranger", self.line("forget", forget)))
        if other is not None:
            rows.append((f"same person as p{int(other.id)}", self.line("merge", key, f"p{int(other.id)}")))
        rows.append(("undo the last change", self.line("undo")))
        return self._block(f"Fix {key}", rows)

    def unsorted(self, face: FaceRecord, person: Person | None) -> str:
        key = f"f{int(face.face_id)}"
        rows = []
        if person is not None:
            rows.append((f"it is p{int(person.id)}", self.line("move", key, f"p{int(person.id)}")))
        rows.append(("someone new", self.line("move", key, '"NAME"', flags=("--new",))))
        rows.append(("not a face, or a stranger", self.line("forget", key)))
        rows.append(("undo the last change", self.line("undo")))
        return self._block("Fix unsorted faces", rows)

    @staticmethod
    def _block(title: str, rows: list[tuple[str, str]]) -> str:
        items = "".join(f'{_e(label)}<code class="cmd">{_e(text)}</code>' for label, text in rows)
        return f'<details class="fix"><summary>{_e(title)}: commands to copy</summary><div>{items}</div></details>'


def _write_thumbs(outcome: ScanOutcome, folder: Path) -> set[int]:
    """Bring ``folder`` up to date; return the ids of the faces that have a thumbnail there.

    A thumbnail file that is there and not empty is kept unread: face ids are never reused and a
    face's thumbnail never changes within one index. The folder notes whose index its files came
    from (``LIBRARY_FILE``); written for another index (rebuilt in the same output folder, whose ids
    restart at 1), every file is written anew. Only the missing ones are read from the index.
    """
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / LIBRARY_FILE
    try:
        same_index = bool(outcome.library_id) and marker.read_text(encoding="ascii") == outcome.library_id
    except (OSError, UnicodeDecodeError):
        same_index = False
    if not same_index:
        marker.unlink(missing_ok=True)
    existing: dict[str, os.DirEntry[str]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if _THUMB_NAME.match(entry.name):
                existing[entry.name] = entry
            elif entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file():
                Path(entry.path).unlink(missing_ok=True)  # left over by a killed run
    present: set[int] = set()
    for person_faces in (*(person.faces for person in outcome.people), outcome.unsorted):
        for face in person_faces:
            name = f"{int(face.face_id)}.jpg"
            entry = existing.pop(name, None)
            if same_index and entry is not None and entry.is_file() and _size(entry):
                present.add(face.face_id)
                continue
            thumbnail = face.thumbnail  # read from the index on demand
            if thumbnail:
                write_atomic(folder / name, thumbnail, sync=False)
                present.add(face.face_id)
            elif entry is not None and entry.is_file():
                Path(entry.path).unlink(missing_ok=True)
    for entry in existing.values():  # thumbnails of faces no longer in the outcome
        if entry.is_file():
            Path(entry.path).unlink(missing_ok=True)
    if not same_index and outcome.library_id:
        write_atomic(marker, outcome.library_id.encode("ascii"), sync=False)
    return present


def _quote(text: str) -> str:
    """``text`` as one POSIX shell word: in double quotes when nothing in it is special there (easier to edit
    than shlex's single quotes around an apostrophe), else ``shlex.quote``."""
    quoted = shlex.quote(text)
    if quoted == text or not text.isprintable() or any(c in text for c in '"$`\\!'):
        return quoted
    return f'"{text}"'


def _size(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat().st_size
    except FileNotFoundError:
        return 0


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
