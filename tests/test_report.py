"""report.html for a reader: a strip with one face per person, visible ids, commands that work as pasted, 400 px."""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import shlex
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from facecluster.cli import main
from facecluster.library import Library
from facecluster.outputs.report import HEADLESS_CHROMIUM_FLAGS, write_report
from facecluster.pipeline.plan import ScanOptions
from facecluster.types import FaceRecord, Person, ScanOutcome
from tests.fakes import FakeAnalyzer, by_size, write_photo
from tests.test_outputs import CHROMIUM, make_outcome

HOSTILE_OUTPUT = "it's my $out"
"""An output folder name a shell would mangle unquoted: the page's -o must quote it."""


class Page(HTMLParser):
    """What a reader sees of a report: the strip, each section's heading ids, thumbnails and commands."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.strip: list[list[str]] = []  # [href, style, caption] of each strip entry
        self.sections: list[str] = []
        self.ids: dict[str, list[str]] = {}  # section -> the ids shown beside its heading
        self.figures: list[dict[str, str]] = []  # {"section", "src", "caption"} of each thumbnail
        self.commands: dict[str, dict[str, str]] = {}  # section -> what for -> command
        self._stack: list[tuple[str, str]] = []
        self._text: list[str] = []
        self._label = ""
        self.feed(text)
        self.close()

    def _inside(self, tag: str, cls: str) -> bool:
        return (tag, cls) in self._stack

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        cls = attributes.get("class", "")
        if tag == "section":
            self.sections.append(attributes.get("id", ""))
        elif tag == "a" and self._inside("div", "strip"):
            self.strip.append([attributes["href"], "", ""])
        elif tag == "i" and self._inside("div", "strip"):
            self.strip[-1][1] = attributes.get("style", "")
        elif tag == "a" and self._inside("div", "grid"):
            self.figures.append({"section": self.sections[-1], "src": "", "caption": ""})
        elif tag == "img" and self._inside("div", "grid"):
            self.figures[-1]["src"] = attributes.get("src", "")
        if tag == "code" and cls == "cmd":
            self._label = "".join(self._text)
        if tag in ("a", "code"):
            self._text = []
        if tag not in ("img", "meta"):
            self._stack.append((tag, cls))

    def handle_endtag(self, tag: str) -> None:
        cls = ""
        while self._stack:
            open_tag, cls = self._stack.pop()
            if open_tag == tag:
                break
        text = "".join(self._text)
        section = self.sections[-1] if self.sections else ""
        if tag == "a" and self._inside("div", "grid"):
            self.figures[-1]["caption"] = text
        elif tag == "a" and self._inside("div", "strip"):
            self.strip[-1][2] = text
        elif tag == "code" and cls == "id":
            self.ids.setdefault(section, []).append(text)
        elif tag == "code" and cls == "cmd":
            self.commands.setdefault(section, {})[self._label] = text
        if tag in ("code", "summary"):
            self._text = []

    def handle_data(self, data: str) -> None:
        self._text.append(data)


def read_page(output: Path) -> Page:
    return Page((output / "report.html").read_text(encoding="utf-8"))


def paste(command: str) -> tuple[int, str]:
    """Run a command copied from the page as a shell would split it."""
    words = shlex.split(command)
    assert words[0] == "facecluster"
    result = CliRunner().invoke(main, words[1:])
    return result.exit_code, result.output


@pytest.fixture()
def hostile_library(photos: Path, tmp_path: Path, fake: FakeAnalyzer) -> Library:
    """The stand-in library scanned into an output folder whose name needs quoting."""
    library = Library.create(photos, tmp_path / HOSTILE_OUTPUT, load_analyzer=lambda device, workers: fake)
    library.scan()
    return library


def faces_of(library: Library) -> dict[int, int | None]:
    """Face id -> person id (None: unsorted)."""
    outcome = library.outcome()
    owners: dict[int, int | None] = {face.face_id: person.id for person in outcome.people for face in person.faces}
    owners.update({face.face_id: None for face in outcome.unsorted})
    return owners


# --- the strip and the ids ---


def test_the_strip_shows_one_face_per_person_in_order(library: Library) -> None:
    outcome = library.outcome()
    page = read_page(library.output)
    assert [href for href, _, _ in page.strip] == [f"#p{person.id}" for person in outcome.people]
    for (href, style, caption), person in zip(page.strip, outcome.people, strict=True):
        assert caption == f"p{person.id}{len(person.faces)} faces"
        assert href[1:] in page.sections
        face = int(re.fullmatch(r"background-image:url\(thumbs/(\d+)\.jpg\)", style).group(1))
        assert face in {f.face_id for f in person.faces if f.usable}
        assert (library.output / "thumbs" / f"{face}.jpg").stat().st_size > 0


def test_the_strip_shows_the_best_usable_face_and_the_name(tmp_path: Path) -> None:
    outcome = make_outcome(tmp_path)
    alice = outcome.people[0]
    small, big, huge = alice.faces
    alice.faces = [
        dataclasses.replace(small, size=10.0),
        dataclasses.replace(big, size=80.0),
        dataclasses.replace(huge, size=200.0, usable=False),  # larger, but took no part in grouping
    ]
    alice.id, alice.name = 7, "Alice <b>"
    outcome.people[1].id, outcome.people[2].id = 8, 9
    page_text = write_report(outcome, tmp_path / "out").read_text(encoding="utf-8")
    page = Page(page_text)
    assert page.strip[0] == ["#p7", f"background-image:url(thumbs/{big.face_id}.jpg)", "Alice <b>p7 · 3 faces"]
    assert page.strip[1][2] == "p83 faces" and "Alice &lt;b&gt;<small>p7 · 3 faces</small>" in page_text
    # every <img> of the page is a face of a section: the strip draws CSS backgrounds
    assert page_text.count("<img") == sum(len(p.faces) for p in outcome.people) + len(outcome.unsorted)


def test_every_thumbnail_shows_its_face_id_and_every_heading_its_person(library: Library) -> None:
    outcome = library.outcome()
    page = read_page(library.output)
    expected = {f.face_id: f"p{p.id}" for p in outcome.people for f in p.faces}
    expected.update({f.face_id: "unsorted" for f in outcome.unsorted})
    assert len(page.figures) == len(expected) and outcome.unsorted
    for figure in page.figures:
        face = int(figure["caption"].removeprefix("f"))
        assert figure["caption"] == f"f{face}" and figure["src"] == f"thumbs/{face}.jpg"
        assert expected[face] == figure["section"]
    text = (library.output / "report.html").read_text(encoding="utf-8")
    for person in outcome.people:
        assert page.ids[f"p{person.id}"] == [f"p{person.id}"]
        assert f"folder people/{person.album}</span>" in text
    assert ".id,.cmd{-webkit-user-select:all;user-select:all}" in text  # one tap selects a command or a p7


# --- commands: present, quoted, and doing what they say when pasted ---


def test_each_section_offers_each_fix(hostile_library: Library) -> None:
    out = hostile_library.output
    outcome = hostile_library.outcome()
    page = read_page(out)
    for person in outcome.people:
        commands = page.commands[f"p{person.id}"]
        verbs = [shlex.split(command)[1] for command in commands.values()]
        assert verbs == ["name", "move", "split", "forget", "merge", "undo"], commands
        for command in commands.values():
            words = shlex.split(command)
            assert words[-2:] == ["-o", str(out)], command
    assert [shlex.split(c)[1:3] for c in page.commands["unsorted"].values()] == [
        ["move", f"f{outcome.unsorted[0].face_id}"],
        ["move", f"f{outcome.unsorted[0].face_id}"],
        ["forget", f"f{outcome.unsorted[0].face_id}"],
        ["undo", "-o"],
    ]
    assert "'" in page.commands[f"p{outcome.people[0].id}"]["undo the last change"]  # the folder is quoted


def test_pasted_commands_name_move_split_forget_merge_and_undo(hostile_library: Library) -> None:
    library = hostile_library
    out = library.output
    people = by_size(library)
    alice, bob, carol = people[5], people[4], people[2]
    (stranger,) = library.outcome().unsorted

    def command(person: Person | None, label: str) -> str:
        return read_page(out).commands["unsorted" if person is None else f"p{person.id}"][label]

    code, said = paste(command(alice, "name"))
    assert code == 0, said
    assert library.person(alice.id).name == "NAME"
    assert shlex.split(command(alice, "rename"))[1:4] == ["name", f"p{alice.id}", "NAME"]

    add = command(alice, "add faces")
    assert shlex.split(add)[1:4] == ["move", f"f{stranger.face_id}", f"p{alice.id}"]
    code, said = paste(add)
    assert code == 0, said
    assert faces_of(library)[stranger.face_id] == alice.id

    split = command(bob, "split off someone else")
    moved = [int(word[1:]) for word in shlex.split(split)[3:-2]]
    assert len(moved) == 2
    code, said = paste(split)
    assert code == 0, said
    owners = faces_of(library)
    assert owners[moved[0]] == owners[moved[1]] not in (bob.id, None)
    assert sum(owner == bob.id for owner in owners.values()) == 2

    forget = command(carol, "not a face, or a stranger")
    (forgotten,) = (int(word[1:]) for word in shlex.split(forget)[2:-2])
    code, said = paste(forget)
    assert code == 0, said
    assert faces_of(library)[forgotten] is None

    merge = command(alice, next(label for label in read_page(out).commands[f"p{alice.id}"] if "same" in label))
    gone = int(shlex.split(merge)[3][1:])
    before = {face for face, owner in faces_of(library).items() if owner == gone}
    code, said = paste(merge)
    assert code == 0, said
    owners = faces_of(library)
    assert before and all(owners[face] == alice.id for face in before)
    assert gone not in {person.id for person in library.people()}

    code, said = paste(command(alice, "undo the last change"))
    assert code == 0, said
    assert {face for face, owner in faces_of(library).items() if owner == gone} == before


def test_pasted_unsorted_commands_and_awkward_names(hostile_library: Library) -> None:
    library = hostile_library
    out = library.output
    (stranger,) = library.outcome().unsorted
    code, said = paste(read_page(out).commands["unsorted"]["someone new"])
    assert code == 0, said
    assert library.person("NAME").faces[0].face_id == stranger.face_id

    alice = by_size(library)[5]
    for name in ('O\'Brien "Jr" $HOME `id` !1 \\ <b>&amp;', "-x", "Zoë d'Arc", "two  spaces", "\u202eevil"):
        with library.corrections() as edit:
            edit.name(alice.id, name)
        rename = read_page(out).commands[f"p{alice.id}"]["rename"]
        words = shlex.split(rename)
        assert name in words and words[words.index(name) - 1] in (f"p{alice.id}",), rename
        assert paste(rename)[0] == 0  # the same name again: nothing changes
        assert library.person(alice.id).name == name
    assert shlex.split(rename) == ["facecluster", "name", f"p{alice.id}", "\u202eevil", "-o", str(out)]
    with library.corrections() as edit:
        edit.name(alice.id, "-x")
    rename = read_page(out).commands[f"p{alice.id}"]["rename"]
    assert shlex.split(rename) == ["facecluster", "name", "-o", str(out), "--", f"p{alice.id}", "-x"]
    with library.corrections() as edit:
        edit.name(alice.id, "Zoë d'Arc")
    rename = read_page(out).commands[f"p{alice.id}"]["rename"]
    assert rename.startswith(f'facecluster name p{alice.id} "Zoë d\'Arc" -o ')  # easier to edit than '\''


def test_commands_name_the_output_folder_absolutely(library: Library, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_report(library.outcome(), Path("relative"))
    page = read_page(tmp_path / "relative")
    undo = shlex.split(page.commands["unsorted"]["undo the last change"])
    assert undo == ["facecluster", "undo", "-o", str(tmp_path / "relative")]


# --- thumbnails: a no-op rewrite reads none ---


def counted(outcome: ScanOutcome, reads: list[int]) -> ScanOutcome:
    """``outcome`` with every face's thumbnail loader recording the face id when called."""

    def wrap(face: FaceRecord) -> FaceRecord:
        def load() -> bytes:
            reads.append(face.face_id)
            return face.load_thumbnail()

        return dataclasses.replace(face, load_thumbnail=load)

    return dataclasses.replace(
        outcome,
        people=[dataclasses.replace(p, faces=[wrap(f) for f in p.faces]) for p in outcome.people],
        unsorted=[wrap(f) for f in outcome.unsorted],
    )


def test_a_rewrite_reads_only_missing_thumbnails(library: Library, tmp_path: Path) -> None:
    reads: list[int] = []
    outcome = counted(library.outcome(), reads)
    faces = sorted(f.face_id for p in outcome.people for f in p.faces) + [f.face_id for f in outcome.unsorted]
    out = tmp_path / "report"
    write_report(outcome, out)
    assert sorted(reads) == sorted(faces)
    thumbs = out / "thumbs"
    written = {path.name: path.read_bytes() for path in thumbs.iterdir()}

    reads.clear()
    write_report(outcome, out)
    assert reads == []
    assert {path.name: path.read_bytes() for path in thumbs.iterdir()} == written

    (thumbs / f"{faces[0]}.jpg").write_bytes(b"")  # an empty one is written again
    (thumbs / f"{faces[1]}.jpg").unlink()
    (thumbs / "99999.jpg").write_bytes(b"a face gone from the library")
    (thumbs / ".5.jpg-abcd1234.tmp").write_bytes(b"left by a killed run")
    (thumbs / "notes.txt").write_text("not ours")
    write_report(outcome, out)
    assert sorted(reads) == sorted(faces[:2])
    assert {path.name: path.read_bytes() for path in thumbs.iterdir()} == {**written, "notes.txt": b"not ours"}


# --- 400 px wide: nothing sticks out ---

MEASURE = """<script>
const width = innerWidth;
const out = [...document.querySelectorAll("body *")]
  .filter(e => !e.closest(".strip") && e.getBoundingClientRect().right > width + 0.5)
  .map(e => e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right));
const strip = document.querySelector(".strip");
parent.postMessage(JSON.stringify({
  width, scroll: document.documentElement.scrollWidth, out: out.slice(0, 20),
  strip: strip ? strip.getBoundingClientRect().right : 0,
  cells: [...document.querySelectorAll(".grid > a")].slice(0, 1).map(e => e.getBoundingClientRect().width),
}), "*");
</script>"""
FRAME = """<!DOCTYPE html><html><body style="margin:0"><pre id="measured"></pre>
<iframe src="measure.html" style="border:0;width:{width}px;height:900px"></iframe>
<script>addEventListener("message", e => {{ document.getElementById("measured").textContent = e.data; }});</script>
</body></html>"""


def measure(page: Path, width: int, profile: Path) -> dict:
    """Lay ``page`` out ``width`` px wide in Chromium, every command block open, and measure it.

    The page forbids scripts, so a copy of it, without its Content-Security-Policy and with a
    measuring script, is what is opened (beside it, so that its thumbnails load). It is opened in a
    frame of that width: Chromium's headless windows are at least 500 px wide.
    """
    text = page.read_text(encoding="utf-8")
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    text = text.replace('<details class="fix">', '<details class="fix" open>').replace("</body>", MEASURE + "</body>")
    page.with_name("measure.html").write_text(text, encoding="utf-8")
    frame = page.with_name("frame.html")
    frame.write_text(FRAME.format(width=width), encoding="utf-8")
    command = [
        str(CHROMIUM),
        *HEADLESS_CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={width + 100},1000",
    ]
    result = subprocess.run([*command, "--dump-dom", frame.resolve().as_uri()], capture_output=True, timeout=60)
    dom = result.stdout.decode("utf-8", "replace")
    found = re.search(r'<pre id="measured">(.+?)</pre>', dom, re.S)
    assert found, dom[-2000:] + result.stderr.decode(errors="replace")[-2000:]
    return json.loads(html.unescape(found.group(1)))


def test_the_report_fits_400_px(library: Library, tmp_path: Path) -> None:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip("/usr/bin/chromium is not installed")
    long_name = "x" * 120 + ".png"
    write_photo(library.photos / ("a-very-long-folder-name-without-any-break-at-all" * 2) / long_name, [42, 43])
    (library.photos / ("broken-" + "y" * 150 + ".jpg")).write_bytes(b"not a picture")
    library.scan()
    for n, person in enumerate(library.people()[:2]):
        with library.corrections() as edit:
            edit.name(person.id, ("Averyveryverylongnamewithoutspaces" * 3) if n == 0 else "Bob")
    profile = tmp_path / "profile"
    try:
        narrow = measure(library.output / "report.html", 400, profile)
        wide = measure(library.output / "report.html", 1400, profile)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert narrow["width"] == 400 and narrow["scroll"] <= 400 and narrow["out"] == [], narrow
    assert narrow["strip"] <= 400
    assert wide["width"] == 1400 and wide["scroll"] <= 1400 and wide["out"] == [], wide
    assert narrow["cells"][0] < 80 < wide["cells"][0]  # smaller thumbnails on a phone, five to a row


def test_thumbnails_of_an_index_rebuilt_in_the_same_folder_are_written_anew(library):
    """Face ids restart at 1 in a new index: thumbs/1.jpg of the old one must not stand for the new face 1."""
    thumbs = library.output / "thumbs"
    for path in thumbs.glob("*.jpg"):
        path.write_bytes(b"old index")
    (library.output / "index.sqlite").rename(library.output / "old-index.sqlite")
    for leftover in library.output.glob("index.sqlite-*"):
        leftover.unlink()
    library.scan(ScanOptions(new_folder=True))
    faces = [face for person in library.people() for face in person.faces] + library.outcome().unsorted
    assert faces
    for face in faces:
        assert (thumbs / f"{face.face_id}.jpg").read_bytes() == face.thumbnail
