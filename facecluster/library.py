"""A photo library: a photo folder and the output folder holding its face index, albums and report.

```python
library = Library.create("~/Photos", "~/facecluster-photos")
outcome = library.scan()
for person in library.people():
    print(person.id, person.name, len(person.faces), [p.relative for p in person.photos])
with library.corrections() as edit:
    edit.name(person.id, "Alice")
matches = library.find("new-photo.jpg")
```

The index is the single source of truth: ``people()``, ``find()`` and every correction read it;
albums, people.json, report.html and XMP sidecars are outputs, rewritten after each change.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
from PIL import Image

from facecluster.errors import IndexUnavailable, InvalidInput, NoLibrary, PeopleError, StorageError
from facecluster.grouping import GroupingOptions
from facecluster.outputs import write_outputs
from facecluster.outputs.xmp import SidecarReport, write_sidecars
from facecluster.pipeline.ingest import Analyzer, Progress
from facecluster.pipeline.people import read_outcome, regroup
from facecluster.pipeline.plan import ScanOptions, ScanPlan, check_folders, plan_scan
from facecluster.pipeline.recognition import Gallery
from facecluster.pipeline.scan import scan_into
from facecluster.storage.index import INDEX_FILE, FaceIndex
from facecluster.storage.lock import OutputLock
from facecluster.storage.people import People
from facecluster.types import FindResult, Match, Person, ScanOutcome

DEFAULT_OUTPUT = Path("facecluster-output")
FIND_LIMIT = 3
"""How many nearest people ``find`` reports per face."""
_WRITE_ERRORS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT)
_NEW_INDEX_HINT = "; move it aside to start a new index"


def load_face_analyzer(device: str) -> Analyzer:
    """The bundled models on ``device``, with face thumbnails (loads onnxruntime)."""
    from facecluster.inference.analyzer import FaceAnalyzer

    return FaceAnalyzer(device=device, thumbnails=True)


class PeopleEditor:
    """The corrections of one ``Library.corrections()`` block: all applied together, or none.

    People are given as an id (7 or '7'), a 'person_0007' key or a current name; faces as ids.
    """

    def __init__(self, people: People) -> None:
        self._people = people
        self.outcome: ScanOutcome | None = None
        """The regrouped library, once the block has been applied."""

    def person(self, person: int | str) -> int:
        """The id of a person given as an id, a key or a name; PeopleError when there is none."""
        return self._people.resolve(str(person))

    def face(self, face: int | str) -> int:
        """A face id that exists in the index; PeopleError otherwise."""
        return self._people.face(str(face))

    def name(self, person: int | str, name: str) -> int:
        """Name a person (their faces become confirmed); returns their id."""
        person_id = self.person(person)
        self._people.name(person_id, name)
        return person_id

    def merge(self, person: int | str, other: int | str) -> int:
        """Make ``other`` part of ``person``, who keeps id and name; returns that id."""
        keep = self.person(person)
        self._people.merge(keep, self.person(other))
        return keep

    def split(self, person: int | str, faces: list[int | str]) -> int:
        """Take ``faces`` out of ``person`` into a new person; returns the new id."""
        person_id = self.person(person)
        return self._people.split(person_id, [self.face(f) for f in faces])

    def move(self, face: int | str, person: int | str, create: bool = False) -> int:
        """``face`` is ``person``, and not whoever had it before; returns the person's id.

        With ``create``, a ``person`` that is neither an id, a key nor a current name becomes a new
        person of that name.
        """
        face_id = self.face(face)
        try:
            target = self.person(person)
        except PeopleError:
            if not create or re.fullmatch(r"(?:person_)?\d+", str(person).strip()):
                raise
            target = self._people.create(str(person))
        self._people.move(face_id, target)
        return target

    def forget(self, faces: list[int | str]) -> None:
        """These faces are nobody to group (not a face, or a stranger): they stay unsorted."""
        for face in faces:
            self._people.forget(self.face(face))


class Library:
    """A photo folder and its output folder. Build one with ``create`` (to scan) or ``open`` (an earlier scan)."""

    def __init__(self, photos: Path, output: Path, load_analyzer: Callable[[str], Analyzer] | None = None) -> None:
        self.photos = photos
        """The scanned folder (resolved)."""
        self.output = output
        """The output folder (resolved): index.sqlite, people/, report.html, people.json."""
        self._load_analyzer = load_analyzer or load_face_analyzer

    @classmethod
    def create(
        cls,
        photos: str | Path,
        output: str | Path = DEFAULT_OUTPUT,
        load_analyzer: Callable[[str], Analyzer] | None = None,
    ) -> Library:
        """The library of ``photos`` with its outputs in ``output`` (made by the first scan; reused if present).

        The output folder may not lie inside the photo folder or hold it (InvalidInput).
        ``load_analyzer(device)`` replaces the bundled models (tests use a stand-in).
        """
        root, out = check_folders(Path(photos).expanduser(), Path(output).expanduser())
        return cls(root, out, load_analyzer)

    @classmethod
    def open(
        cls, output: str | Path = DEFAULT_OUTPUT, load_analyzer: Callable[[str], Analyzer] | None = None
    ) -> Library:
        """The library an earlier scan wrote to ``output``; NoLibrary when there is none."""
        out = Path(output).expanduser().resolve()
        if not (out / INDEX_FILE).is_file():
            raise NoLibrary(f"{out}: no face index here; run 'facecluster scan PHOTOS -o {output}' first")
        with _reading(out) as index:
            root = index.root()
        if root is None:
            with suppress(StorageError), OutputLock(out):  # OutputBusy while a first scan is still writing it
                pass
            raise NoLibrary(f"{out}: the index predates people support; run 'facecluster scan' once more")
        return cls(root, out, load_analyzer)

    def plan(self, options: ScanOptions | None = None) -> ScanPlan:
        """What ``scan`` would analyse and remove; writes nothing anywhere."""
        if not (self.output / INDEX_FILE).is_file():
            return plan_scan(self.photos, self.output, None, options or ScanOptions())
        with _reading(self.output) as index:
            return plan_scan(self.photos, self.output, index, options or ScanOptions())

    def scan(
        self, options: ScanOptions | None = None, progress: Progress | None = None, album_mode: str = "symlink"
    ) -> ScanOutcome:
        """Index new and changed photos, regroup, and rewrite albums, people.json and report.html.

        Raises OutputBusy when another scan holds the output folder, StorageError when it cannot
        be written, DeviceError when the device cannot be used. Interrupted, it resumes next time.
        """
        options = options or ScanOptions()
        with _writing(self.output) as index:
            outcome = scan_into(index, self.photos, self.output, options, self._load_analyzer, progress)
            index.set_meta(
                {
                    "root": os.fsencode(self.photos).hex(),
                    **options.grouping.as_meta(),
                    "album_mode": album_mode,
                    "xmp": "1" if options.xmp else "",
                }
            )
            write_outputs(outcome, self.output, album_mode, options.xmp)
        return outcome

    def outcome(self) -> ScanOutcome:
        """The people, unsorted faces and photos as the index holds them now (nothing is regrouped)."""
        with _reading(self.output) as index:
            return read_outcome(index, self.photos, _grouping(index), [])

    def people(self) -> list[Person]:
        """Everyone with a face in the library, largest first, with their faces and photos."""
        return self.outcome().people

    def person(self, reference: int | str) -> Person:
        """One person by id, album folder name or name; PeopleError when there is none."""
        text = str(reference)
        for person in self.people():
            if text in (str(person.id), person.album, person.name):
                return person
        raise PeopleError(f"no person {text!r} in {self.output}")

    @contextmanager
    def corrections(self) -> Iterator[PeopleEditor]:
        """Correct people in a block: on leaving it every change is committed, the faces regrouped once
        and the outputs rewritten once; an exception in the block leaves everything as it was.

        ```python
        with library.corrections() as edit:
            alice = edit.name(7, "Alice")
            edit.merge(alice, 12)
        print(edit.outcome.stats.people)
        ```
        """
        with _writing(self.output) as index:
            editor = PeopleEditor(People(index))
            grouping = _grouping(index)
            with index.transaction():
                yield editor
                regroup(index, grouping)
            editor.outcome = self._rewrite(index, grouping)

    def write_xmp(self, beside_originals: bool = False) -> SidecarReport:
        """Regroup, rewrite the outputs and write XMP sidecars (into OUT/xmp/, or beside the photos when asked)."""
        with _writing(self.output) as index:
            grouping = _grouping(index)
            regroup(index, grouping)
            return write_sidecars(self._rewrite(index, grouping), self.output, beside_originals=beside_originals)

    def find(self, query: int | str | Path | np.ndarray | Image.Image, device: str = "auto") -> list[FindResult]:
        """Who is this? The nearest people to each face of ``query``, by the grouping's own joining rule.

        ``query`` is a face id of this library (an int, or a str of digits naming one), a photo (a
        path, or a Pillow image) whose every face is looked up, or a unit embedding. Each result
        lists up to FIND_LIMIT people, nearest first; ``Match.accepted`` says whether a re-scan
        would put the face with them.
        """
        with _reading(self.output) as index:
            try:
                gallery = Gallery.load(index)
            except sqlite3.DatabaseError as error:
                raise IndexUnavailable(
                    f"{index.path}: cannot read people ({error}); run 'facecluster scan' to update the index"
                ) from error
            outcome = read_outcome(index, self.photos, _grouping(index), [])
            people = {person.id: person for person in outcome.people}
        results = []
        for label, embedding, own_face in self._queries(query, gallery, device):
            ranked = [m for m in gallery.rank(embedding, own_face) if m.person_id in people][:FIND_LIMIT]
            matches = [Match(m.person_id, m.distance, m.limit, people[m.person_id]) for m in ranked]
            results.append(FindResult(label, matches))
        return results

    def _queries(
        self, query: int | str | Path | np.ndarray | Image.Image, gallery: Gallery, device: str
    ) -> list[tuple[str, np.ndarray, int | None]]:
        """(label, embedding, face id in the index or None) for each face to look up."""
        if isinstance(query, np.ndarray) and query.ndim == 1:
            return [("embedding", np.asarray(query, dtype=np.float32), None)]
        text = str(query) if isinstance(query, int | str) else None
        if text is not None and text.isdigit() and int(text) in gallery.embeddings:
            return [(f"face {text}", gallery.embeddings[int(text)], int(text))]
        if isinstance(query, int):
            raise PeopleError(f"no face {query} in this index")
        name = "image" if isinstance(query, Image.Image | np.ndarray) else str(query)
        if not isinstance(query, Image.Image | np.ndarray):
            query = Path(query)
            if not query.is_file():
                raise InvalidInput(f"{name}: neither a photo nor a face id of this index")
        analyzer = self._load_analyzer(device)
        result = next(iter(analyzer.analyze_many([query])))
        if result.error is not None:
            raise result.error
        if not result.faces:
            raise InvalidInput(f"no face found in {name}")
        return [
            (f"{name} face {n + 1} {[round(v) for v in face.box]}", face.embedding, None)
            for n, face in enumerate(result.faces)
        ]

    def _rewrite(self, index: FaceIndex, grouping: GroupingOptions) -> ScanOutcome:
        """Read the people back and rewrite every output the last scan asked for."""
        outcome = read_outcome(index, self.photos, grouping, [])
        write_outputs(outcome, self.output, index.meta("album_mode") or "symlink", bool(index.meta("xmp")))
        return outcome


def _grouping(index: FaceIndex) -> GroupingOptions:
    """The grouping options of the index's last scan."""
    return GroupingOptions.from_meta(index.meta("method"), index.meta("threshold"))


@contextmanager
def _reading(output: Path) -> Iterator[FaceIndex]:
    """The index of ``output``, opened read-only (never modified)."""
    try:
        index = FaceIndex(output, readonly=True)
    except IndexUnavailable as error:
        raise IndexUnavailable(f"{error}{_hint(error.__cause__)}") from error
    try:
        yield index
    except sqlite3.DatabaseError as error:
        raise IndexUnavailable(f"{index.path}: cannot read the face index ({error}){_hint(error)}") from error
    finally:
        index.close()


def _hint(error: BaseException | None) -> str:
    """Advice for an index that cannot be read: a passing failure (locked, unreadable) gets none."""
    return "" if isinstance(error, sqlite3.OperationalError) else _NEW_INDEX_HINT


@contextmanager
def _writing(output: Path) -> Iterator[FaceIndex]:
    """The index of ``output`` under the output lock; write failures become StorageError."""
    with OutputLock(output):
        index = None
        try:
            index = FaceIndex(output)
            yield index
        except sqlite3.OperationalError as error:
            raise StorageError(f"cannot write the face index in {output}: {error}") from error
        except IndexUnavailable as error:
            raise IndexUnavailable(f"{error}{_NEW_INDEX_HINT}") from error
        except OSError as error:
            if error.errno in _WRITE_ERRORS:
                raise StorageError(f"cannot write to the output folder {output}: {error.strerror}") from error
            raise
        finally:
            if index is not None:
                index.close()
