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
import hashlib
import io
import os
import re
import secrets
import sqlite3
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image

from facecluster.errors import (
    IndexOutdated,
    IndexUnavailable,
    InvalidInput,
    NoLibrary,
    OutputBusy,
    PeopleError,
    StorageError,
)
from facecluster.grouping import GroupingOptions
from facecluster.inference.images import load_image
from facecluster.outputs import write_outputs
from facecluster.outputs.xmp import SidecarReport, write_sidecars
from facecluster.pipeline.ingest import Analyzer, Progress
from facecluster.pipeline.people import LIBRARY_ID_KEY, good_enough, read_outcome, regroup
from facecluster.pipeline.plan import ScanOptions, ScanPlan, check_folders, plan_scan
from facecluster.pipeline.recognition import Gallery
from facecluster.pipeline.scan import check_scan, scan_into
from facecluster.pipeline.suggest import Faces, Ranked, Said, nearest_faces, rank
from facecluster.storage import browse
from facecluster.storage.history import Change, History, read_changes
from facecluster.storage.index import INDEX_FILE, FaceIndex, ThumbnailReader
from facecluster.storage.lock import OutputLock, signals_deferred
from facecluster.storage.people import NOBODY, People, parse_reference
from facecluster.types import (
    FaceRecord,
    FindResult,
    Match,
    Overview,
    Person,
    PersonSummary,
    Photo,
    Question,
    QuestionSide,
    ScanOutcome,
)

DEFAULT_OUTPUT = Path("facecluster-output")
STALE_KEY = "outputs_stale"
"""Meta key set while the outputs are behind the index (between a change's commit and their rewrite)."""
REGROUP_KEY = "regroup_pending"
"""Meta key set while deferred changes (``defer=True``) wait for their regroup; ``settle()`` does it."""
FACES_SHOWN = 8
"""Face ids listed in a message before '... and N more'."""
PREVIEW_SIDE = 2048
"""Longest side of a photo converted for a browser (``photo_jpeg``)."""
SIDE_FACES = 6
"""Faces shown per side of a "same person?" question."""
_QUESTION = re.compile(r"p(?P<person>\d+)-(?:p(?P<other>\d+)|f(?P<face>\d+))")
SUGGEST_FACTOR = 1.1
"""Suggest a person for a face only within this multiple of the distance at which the grouping would join
them. Measured on 3,000 LFW faces held out of their person (of 3+ faces): 98.3 % lie within 1.1 x of
their own person, while the nearest other person lies within it for 30 % (1.2 x: 99.8 % and 87 %)."""
FIND_LIMIT = 3
"""How many nearest people ``find`` reports per face."""
_WRITE_ERRORS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT)
_NEW_INDEX_HINT = (
    "; restore index.sqlite from a backup (README: 'Backing up'), or rename it to start a new index"
    " (the renamed file keeps everything it holds)"
)


def load_face_analyzer(device: str, workers: int | None = None) -> Analyzer:
    """The bundled models on ``device``, with face thumbnails, analysing ``workers`` photos at once
    (default: one per core); loads onnxruntime."""
    from facecluster.inference.analyzer import FaceAnalyzer

    return FaceAnalyzer(device=device, thumbnails=True, workers=workers)


def load_cluster_analyzer(scheduler: str, device: str, workers: int | None = None) -> Analyzer:
    """The bundled models on the workers of the Dask scheduler at ``scheduler``, on ``device`` there
    (``workers`` must be None: the cluster's own workers do the work); ClusterError when it cannot be used."""
    from facecluster.inference.cluster import ClusterAnalyzer

    return ClusterAnalyzer(scheduler, device)


def _faces_text(faces: list[int]) -> str:
    """'f3, f9 and 12 more' for messages."""
    shown = ", ".join(f"f{face}" for face in faces[:FACES_SHOWN])
    return shown + (f" and {len(faces) - FACES_SHOWN} more" if len(faces) > FACES_SHOWN else "")


class PeopleEditor:
    """The corrections of one ``Library.corrections()`` block: all applied together, or none.

    People are given as 'p7', 'person_0007', a current name (any case) or an id (7); faces as
    'f12' or an id. A bare number that is both a person's and a face's id is refused as ambiguous.
    Each method adds what it did, in words, to ``effects``.
    """

    def __init__(self, people: People, effects: list[str]) -> None:
        self._people = people
        self.effects = effects
        """What the block did so far, one line per change (shown by the CLI and kept in the history)."""
        self.outcome: ScanOutcome | None = None
        """The regrouped library, once the block has been applied."""

    def person(self, person: int | str) -> int:
        """The id of a person; PeopleError (with suggestions) when there is none."""
        return self._people.resolve(f"p{person}" if isinstance(person, int) else person)

    def face(self, face: int | str) -> int:
        """A face id that exists in the index; PeopleError otherwise."""
        return self._people.face(f"f{face}" if isinstance(face, int) else face)

    def name(self, person: int | str, name: str) -> int:
        """Name a person (their faces become confirmed); returns their id."""
        person_id = self.person(person)
        before = self._people.label(person_id)
        if self._people.names().get(person_id) == unicodedata.normalize("NFC", name.strip()):
            self.effects.append(f"{before} is already named so; nothing changed")
            return person_id
        self._people.name(person_id, name)
        count = len(self._people.faces_of(person_id))
        self.effects.append(f"named {before} {self._people.names()[person_id]!r} ({count} faces, now confirmed)")
        return person_id

    def merge(self, person: int | str, other: int | str) -> int:
        """Make ``other`` part of ``person``, who keeps id and name (or takes ``other``'s); returns that id."""
        keep, gone = self.person(person), self.person(other)
        gone_label, faces = self._people.label(gone), self._people.faces_of(gone)
        self._people.merge(keep, gone)
        self.effects.append(f"merged {gone_label} ({_faces_text(faces)}) into {self._people.label(keep)}")
        return keep

    def split(self, person: int | str, faces: list[int | str]) -> int:
        """Take ``faces`` out of ``person`` into a new person; returns the new id."""
        person_id = self.person(person)
        ids = [self.face(f) for f in faces]
        new = self._people.split(person_id, ids)
        self.effects.append(
            f"split {_faces_text(ids)} out of {self._people.label(person_id)} into the new person p{new}"
        )
        return new

    def move(self, face: int | str, person: int | str, create: bool = False) -> int:
        """``face`` is ``person``, and not whoever had it before; returns the person's id.

        With ``create``, a ``person`` that is no current name becomes a new person of that name;
        without it, PeopleError (with "did you mean").
        """
        face_id = self.face(face)
        try:
            target = self.person(person)
        except PeopleError:
            if not create or not isinstance(person, str) or parse_reference(person)[1] is not None:
                raise
            target = self._people.create(person)
            self.effects.append(f"created the person {self._people.label(target)}")
        else:
            if create:
                raise PeopleError(
                    f"{self._people.label(target)} already exists; to move into them, leave out --new (create=False)"
                )
        current = self._people.person_of(face_id)
        source = "unsorted" if current is None else self._people.label(current)
        self._people.move(face_id, target)
        self.effects.append(f"moved f{face_id} from {source} to {self._people.label(target)}")
        return target

    def reject(self, face: int | str, person: int | str) -> bool:
        """``face`` is not ``person``: it leaves them (if theirs) and is never grouped with them again.

        Returns whether the face left them. The face may join someone else at the next grouping.
        """
        face_id, person_id = self.face(face), self.person(person)
        left = self._people.reject(face_id, person_id)
        label = self._people.label(person_id)
        self.effects.append(
            f"f{face_id} is not {label}: " + ("taken out of them" if left else "it will never be grouped with them")
        )
        return left

    def apart(self, person: int | str, other: int | str) -> None:
        """``person`` and ``other`` are two people: never grouped together, and never asked about again.

        Both are confirmed as they are now (their faces start every grouping as they are).
        """
        first, second = self.person(person), self.person(other)
        if first == second:
            raise PeopleError(f"{self._people.label(first)} was given twice; give two people")
        new = self._people.apart(first, second)
        labels = f"{self._people.label(first)} and {self._people.label(second)}"
        self.effects.append(
            f"{labels} are two people: never grouped together (both confirmed as they are)"
            if new
            else f"{labels} were already said to be two people; nothing changed"
        )

    def answer(self, question: str, same: bool) -> None:
        """Answer a question of ``Library.suggestions()`` by its id ('p3-p7', 'p3-f12').

        Yes: the second side joins the first (``merge``; a face: ``move``). No: ``apart`` (a face:
        ``reject``). PeopleError when the id is not a question's or a side no longer exists.
        """
        match = _QUESTION.fullmatch(question.strip())
        if match is None:
            raise PeopleError(f"{question!r} is not a question id ('p3-p7' or 'p3-f12'; see 'facecluster suggest')")
        person = self.person(f"p{match['person']}")
        if match["face"] is not None:
            face = self.face(f"f{match['face']}")
            self.move(face, person) if same else self.reject(face, person)
            return
        other = self.person(f"p{match['other']}")
        first, second = stays(self._people, person, other)
        self.merge(first, second) if same else self.apart(first, second)

    def forget(self, references: list[int | str]) -> list[int]:
        """These faces (or every face of these people: 'p7', a name) are nobody to group; returns the face ids.

        Forgotten faces stay unsorted: not a face, or a stranger.
        """
        forgotten: list[int] = []
        for reference in references:
            kind, number = parse_reference(str(reference))
            if isinstance(reference, str) and (kind == "person" or number is None):  # p7, person_0007 or a name
                person = self.person(reference)
                label, faces = self._people.label(person), self._people.faces_of(person)
                self._people.forget(faces)
                self.effects.append(f"forgot every face of {label}: {_faces_text(faces)} (now unsorted)")
                forgotten += faces
                continue
            face = self.face(reference)
            current = self._people.person_of(face)
            self._people.forget([face])
            was = "unsorted" if current is None else f"in {self._people.label(current)}"
            self.effects.append(f"forgot f{face} (was {was}; now unsorted)")
            forgotten.append(face)
        return forgotten


def _disjoint(ranked: Iterator[Ranked], about: int | None) -> Iterator[Ranked]:
    """The questions that share no person or face (but ``about``) with a better one."""
    taken: set[tuple[str, int]] = set()
    for question in ranked:
        sides = {("p", question.person), ("p", question.other) if question.face is None else ("f", question.face)}
        sides.discard(("p", about))
        if taken.isdisjoint(sides):
            taken |= sides
            yield question


def stays(people: People, person: int, other: int) -> tuple[int, int]:
    """(who stays, who joins) when two people are one: the named one, else the one with more faces
    (then the smaller id)."""
    names = people.names()

    def rank(candidate: int) -> tuple[bool, int, int]:
        return names.get(candidate) is None, -len(people.faces_of(candidate)), candidate

    first, second = sorted((person, other), key=rank)
    return first, second


class Library:
    """A photo folder and its output folder. Build one with ``create`` (to scan) or ``open`` (an earlier scan)."""

    def __init__(
        self, photos: Path, output: Path, load_analyzer: Callable[[str, int | None], Analyzer] | None = None
    ) -> None:
        self.photos = photos
        """The scanned folder (resolved)."""
        self.output = output
        """The output folder (resolved): index.sqlite, people/, report.html, people.json."""
        self._load_analyzer = load_analyzer or load_face_analyzer
        self._gallery_cache: tuple[tuple[int, ...], Gallery, dict[int, set[int]]] | None = None
        self._embeddings: tuple[tuple[int, int], tuple[np.ndarray, np.ndarray]] | None = None
        self._nearest: tuple[str, np.ndarray] | None = None
        self._unsorted_nearest: tuple[tuple[int, ...], dict[int, Match | None]] = ((), {})

    @classmethod
    def create(
        cls,
        photos: str | Path,
        output: str | Path = DEFAULT_OUTPUT,
        load_analyzer: Callable[[str, int | None], Analyzer] | None = None,
    ) -> Library:
        """The library of ``photos`` with its outputs in ``output`` (made by the first scan; reused if present).

        The output folder may not lie inside the photo folder or hold it (InvalidInput).
        ``load_analyzer(device, workers)`` replaces the bundled models (tests use a stand-in).
        """
        root, out = check_folders(Path(photos).expanduser(), Path(output).expanduser())
        return cls(root, out, load_analyzer)

    @classmethod
    def open(
        cls, output: str | Path = DEFAULT_OUTPUT, load_analyzer: Callable[[str, int | None], Analyzer] | None = None
    ) -> Library:
        """The library an earlier scan wrote to ``output``; NoLibrary when there is none."""
        out = Path(output).expanduser().resolve()
        if not (out / INDEX_FILE).is_file():
            raise NoLibrary(f"{out}: no face index here; run 'facecluster scan PHOTOS -o {output}' first")
        with _reading(out) as index:
            root, stale = index.root(), index.meta(STALE_KEY) or index.meta(REGROUP_KEY)
        if root is None:
            with suppress(StorageError), OutputLock(out):  # OutputBusy while a first scan is still writing it
                pass
            raise NoLibrary(f"{out}: the index predates people support; run 'facecluster scan' once more")
        library = cls(root, out, load_analyzer)
        if stale:
            library._catch_up()
        return library

    def plan(self, options: ScanOptions | None = None) -> ScanPlan:
        """What ``scan`` would analyse, find missing and find again; writes nothing anywhere.

        InvalidInput, as ``scan`` would raise it, for another photo folder or one without photos.
        """
        options = options or ScanOptions()
        if not (self.output / INDEX_FILE).is_file():
            return plan_scan(self.photos, self.output, None, options)
        with _reading(self.output) as index:
            plan = plan_scan(self.photos, self.output, index, options)
            check_scan(index, self.photos, plan, options)
            return plan

    def scan(
        self, options: ScanOptions | None = None, progress: Progress | None = None, album_mode: str = "symlink"
    ) -> ScanOutcome:
        """Index new and changed photos, regroup, and rewrite albums, people.json and report.html.

        Raises OutputBusy when another scan holds the output folder, StorageError when it cannot
        be written, DeviceError when the device cannot be used. With ``options.scheduler`` the photos
        are analysed on that Dask cluster's workers: ClusterError when it cannot be used, ClusterLost
        when it goes away. Interrupted, it resumes next time.
        """
        options = options or ScanOptions()
        load = self._load_analyzer if options.scheduler is None else partial(load_cluster_analyzer, options.scheduler)
        with _writing(self.output) as index:
            if not index.meta(LIBRARY_ID_KEY):
                index.set_meta({LIBRARY_ID_KEY: secrets.token_hex(8)})
            outcome = scan_into(index, self.photos, self.output, options, load, progress)
            index.set_meta(
                {
                    "root": os.fsencode(self.photos).hex(),
                    **options.grouping.as_meta(),
                    "album_mode": album_mode,
                    "xmp": "1" if options.xmp else "",
                }
            )
            index.set_meta({STALE_KEY: "1", REGROUP_KEY: ""})
            write_outputs(outcome, self.output, album_mode, options.xmp)
            index.set_meta({STALE_KEY: ""})
        return outcome

    def outcome(self) -> ScanOutcome:
        """The people, unsorted faces and photos as the index holds them now (nothing is regrouped)."""
        with _reading(self.output) as index:
            return read_outcome(index, self.photos, _grouping(index), [])

    def people(self) -> list[Person]:
        """Everyone with a face in the library, largest first, with their faces and photos."""
        return self.outcome().people

    def person(self, reference: int | str) -> Person:
        """One person by 'p7', 'person_0007', a name (any case) or an id; PeopleError when there is none."""
        with _reading(self.output) as index:
            people = People(index)
            person_id = people.resolve(f"p{reference}" if isinstance(reference, int) else reference)
            label = people.label(person_id)
            outcome = read_outcome(index, self.photos, _grouping(index), [])
        for person in outcome.people:
            if person.id == person_id:
                return person
        raise PeopleError(f"{label} has no face in a photo present now (their photos are missing)")

    def overview(self) -> Overview:
        """Everyone at a glance (counts and best face, no face lists): fast on libraries of thousands of people."""
        with _reading(self.output) as index:
            rows = browse.person_rows(index)
            unsorted, forgotten = browse.unsorted_counts(index)
        people = [PersonSummary(r.person_id, r.name, r.faces, r.photos, r.best_face) for r in rows]
        people.sort(key=lambda p: (p.name is None, -p.faces, p.id))
        return Overview(people, unsorted, forgotten)

    def summary(self, person: int) -> PersonSummary | None:
        """One person of ``overview()`` (None when they have no face in a present photo now)."""
        with _reading(self.output) as index:
            row = browse.person_row(index, person)
        return None if row is None else PersonSummary(row.person_id, row.name, row.faces, row.photos, row.best_face)

    def names(self) -> list[str]:
        """Every name given, in no particular order (named people whose photos are all missing too)."""
        with _reading(self.output) as index:
            return [name for name in People(index).names().values() if name]

    def faces(
        self, person: int | None = None, forgotten: bool = False, offset: int = 0, limit: int | None = None
    ) -> tuple[int, list[FaceRecord]]:
        """(how many, a page) of a person's faces, or of the unsorted ones (``person`` None; the forgotten
        ones with ``forgotten``), in present photos, oldest photo first. Thumbnails are read on demand."""
        with _reading(self.output) as index:
            total, rows = browse.face_rows(index, person, forgotten, offset, -1 if limit is None else limit)
            thumbnails = ThumbnailReader(index)
        records = [
            FaceRecord(
                row.face_id,
                Photo(self.photos / row.relative, row.relative, row.taken, row.camera, row.width, row.height),
                row.box,
                row.score,
                row.size,
                row.sharpness,
                usable=not row.forgotten and (row.confirmed or good_enough(row.size, row.score, row.sharpness)),
                load_thumbnail=partial(thumbnails, row.face_id),
            )
            for row in rows
        ]
        return total, records

    def photo_of(self, face: int) -> Path | None:
        """The photo (absolute path) holding a face now; None when there is no such face or its photo is missing."""
        with _reading(self.output) as index:
            relative = browse.face_path(index, face)
        return None if relative is None else self.photos / relative

    def photo_jpeg(self, path: Path, side: int = PREVIEW_SIDE) -> bytes:
        """A photo of the library as a JPEG of at most ``side`` pixels a side, upright (for browsers that
        cannot show its format, such as HEIC). ImageLoadError when it cannot be read."""
        image = load_image(path, decode_side=side).image
        image.thumbnail((side, side))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=88)
        return buffer.getvalue()

    def thumbnail(self, face: int) -> bytes:
        """The small JPEG of a face (empty when there is none)."""
        with _reading(self.output) as index:
            return index.thumbnail(face)

    def nearest_people(self, faces: list[int]) -> dict[int, Match | None]:
        """Is this Alice? For each face, the nearest person it is not in and was not said not to be.

        The same nearest-person search as ``find``; None for a forgotten face, when no one is left, or
        when the nearest lies beyond SUGGEST_FACTOR times the grouping's limit.
        ``Match.accepted`` says whether a grouping would put the face with them.
        """
        gallery, refused = self._gallery()
        asked = [face for face in faces if NOBODY not in refused.get(face, ())]
        found = gallery.nearest(asked, refused)
        return {
            face: match if (match := found.get(face)) and match.distance <= SUGGEST_FACTOR * match.limit else None
            for face in faces
        }

    def candidates(self, person: int, limit: int = 12) -> list[Match]:
        """Unsorted faces that may be ``person`` (their nearest person is them), nearest first.

        Each ``Match`` is about one face: ``person_id`` is the person, ``face_id`` the face.
        """
        version = self.version()
        if self._unsorted_nearest[0] != version:
            with _reading(self.output) as index:
                unsorted = browse.unsorted_ids(index)
            self._unsorted_nearest = (version, self.nearest_people(unsorted))
        near = [(m.distance, face) for face, m in self._unsorted_nearest[1].items() if m and m.person_id == person]
        return [
            Match(person, distance, self._unsorted_nearest[1][face].limit, face_id=face)
            for distance, face in sorted(near)[:limit]
        ]

    def suggestions(
        self,
        limit: int | None = 20,
        person: int | str | None = None,
        order: str = "gain",
        disjoint: bool = True,
    ) -> list[Question]:
        """Same person? The questions whose "yes" would bring most faces together, by expected gain.

        Each pairs a person with another person or with an unsorted face; with ``person``, only
        questions about them. ``disjoint``: no person or face (but ``person``) in two questions of
        the list, so each can be answered in turn whatever the answers before; for one question at
        a time, asked again after each answer, ``disjoint=False`` gives the best ones whatever they
        share. ``order`` "closest" ranks by the distance of the sides' closest faces instead (the
        simple ranker benchmarks compare with). Answer with ``PeopleEditor.answer`` (or merge /
        apart, move / reject): an answered question never comes back, and the answer re-ranks the rest.
        """
        with _reading(self.output) as index:
            people = People(index)
            about = None if person is None else people.resolve(f"p{person}" if isinstance(person, int) else person)
            faces, said = self._askable(index, people)
            ranked = rank(faces, said, order, about, self._nearest_faces(faces))
            ranked = list(islice(_disjoint(ranked, about) if disjoint else ranked, limit))
            best = {
                person: faces.ids[faces.owners == person][
                    np.argsort(-faces.quality[faces.owners == person], kind="stable")
                ]
                for person in {side for q in ranked for side in (q.person, q.other) if side is not None}
            }
            return [self._question(index, people, q, best) for q in ranked]

    def askable(self) -> tuple[Faces, Said]:
        """What the suggestions are about: the faces of people and the good unsorted ones, and the
        answers so far (for tools that study the suggestions)."""
        with _reading(self.output) as index:
            return self._askable(index, People(index))

    def _askable(self, index: FaceIndex, people: People) -> tuple[Faces, Said]:
        faces = browse.askable_faces(index)
        usable = (faces.owners >= 0) | np.array(
            [good_enough(*values) for values in zip(faces.size, faces.score, faces.sharpness, strict=True)],
            dtype=bool,
        )
        all_ids, vectors = self._embedding_matrix(index)
        ids = faces.ids[usable]
        asked = Faces(
            ids,
            vectors[np.searchsorted(all_ids, ids)],
            faces.owners[usable],
            faces.photos[usable],
            (faces.size * faces.score)[usable],
        )
        return asked, Said(people.apart_pairs(), people.corrections().rejected)

    def _nearest_faces(self, faces: Faces) -> np.ndarray:
        """``nearest_faces`` of these faces, kept while the same faces are asked about."""
        key = hashlib.sha256(faces.ids.tobytes()).hexdigest()
        if self._nearest is None or self._nearest[0] != key:
            self._nearest = (key, nearest_faces(faces.vectors))
        return self._nearest[1]

    def _question(self, index: FaceIndex, people: People, ranked: Ranked, best: dict[int, np.ndarray]) -> Question:
        """A ranked question with what to show of each side."""
        names = people.names()

        def side(person: int | None, nearest: int) -> QuestionSide:
            shown = [nearest]
            if person is not None:
                shown += [int(f) for f in best[person][: SIDE_FACES + 1] if f != nearest][: SIDE_FACES - 1]
            relative = browse.face_path(index, nearest) or ""
            count = 1 if person is None else len(best[person])
            return QuestionSide(person, names.get(person), shown, count, self.photos / relative)

        mine = side(ranked.person, ranked.closest[0])
        theirs = side(ranked.other, ranked.closest[1])
        if ranked.other is None:
            return Question(f"p{ranked.person}-f{ranked.face}", mine, theirs, ranked.probability, ranked.gain)
        low, high = sorted((ranked.person, ranked.other))
        first = stays(people, ranked.person, ranked.other)[0]
        sides = (mine, theirs) if first == ranked.person else (theirs, mine)
        return Question(f"p{low}-p{high}", *sides, ranked.probability, ranked.gain)

    def _embedding_matrix(self, index: FaceIndex) -> tuple[np.ndarray, np.ndarray]:
        """(face ids, embeddings) of every face of the index, in id order; read again only when faces change."""
        faces = index.db.execute("SELECT count(*), coalesce(max(id), 0) FROM faces").fetchone()
        if self._embeddings is None or self._embeddings[0] != faces:  # faces and embeddings never change
            self._embeddings = (faces, browse.embedding_matrix(index))
        return self._embeddings[1]

    def _gallery(self) -> tuple[Gallery, dict[int, set[int]]]:
        """Every grouped face's embedding and the rejections, read once per index version."""
        version = self.version()
        if self._gallery_cache is None or self._gallery_cache[0] != version:
            with _reading(self.output) as index:
                gallery = Gallery.load(index, self._embedding_matrix(index))
                self._gallery_cache = (version, gallery, People(index).corrections().rejected)
        return self._gallery_cache[1], self._gallery_cache[2]

    def version(self) -> tuple[int, ...]:
        """Changes whenever anything is committed to the index, by any process: a key for caches."""
        stamps: list[int] = []
        for name in (INDEX_FILE, INDEX_FILE + "-wal"):
            try:
                stat = (self.output / name).stat()
                stamps += [stat.st_mtime_ns, stat.st_size]
            except FileNotFoundError:
                stamps += [0, 0]
        return tuple(stamps)

    def identity(self) -> str:
        """A short id of this index, different for every index (even of the same output folder, rebuilt):
        for caches of things known by face id, since face ids start at 1 in every index."""
        with _reading(self.output) as index:
            given = index.meta(LIBRARY_ID_KEY)
        if given:
            return given
        stat = (self.output / INDEX_FILE).stat()  # an index whose last scan predates the id
        return hashlib.sha256(f"{self.output}\0{stat.st_dev}\0{stat.st_ino}".encode()).hexdigest()[:16]

    def busy(self) -> bool:
        """Whether another command (a scan, a correction) holds the output folder now."""
        return OutputLock.busy(self.output)

    def pending(self) -> bool:
        """Whether deferred changes wait for ``settle()`` (their regroup, or the outputs' rewrite)."""
        with _reading(self.output) as index:
            return bool(index.meta(REGROUP_KEY) or index.meta(STALE_KEY))

    @contextmanager
    def corrections(self, command: str | None = None, defer: bool = False) -> Iterator[PeopleEditor]:
        """Correct people in a block: on leaving it every change is committed, the faces regrouped once
        and the outputs rewritten once; an exception in the block leaves everything as it was.

        The block is one entry of the history (``command`` says what was run; by default the
        effects), and ``undo()`` takes it back. With ``defer`` the change is committed at once but
        the regroup and the rewrite wait for ``settle()`` (the review app batches its changes so);
        any command that opens the library meanwhile does them first.

        ```python
        with library.corrections() as edit:
            alice = edit.name(7, "Alice")
            edit.merge(alice, 12)
        print(edit.effects, edit.outcome.stats.people)
        ```
        """
        with _writing(self.output) as index, self._changing(index, defer) as change:
            history = History(index)
            with history.recording(command or "") as effects:
                editor = PeopleEditor(People(index), effects)
                yield editor
        editor.outcome = change.outcome

    def undo(self, defer: bool = False) -> Change:
        """Take back the newest change not undone yet (repeatable: each call goes one further back).

        Returns the change that was undone; PeopleError when there is none. The grouping and the
        outputs return to what they were before that change (with ``defer``, at ``settle()``).
        """
        with _writing(self.output) as index, self._changing(index, defer):
            history = History(index)
            change = history.last_undoable()
            history.undo(change)
        return change

    def history(self, limit: int | None = None, undoable: bool = False) -> list[Change]:
        """Every recorded change (corrections, prunes, undos), newest first; with ``undoable`` only those
        ``undo()`` could still take back."""
        with _reading(self.output) as index:
            return read_changes(index.db, limit, undoable)

    def missing(self) -> dict[str, list[str]]:
        """Photos no scan found any more, by content: their paths (relative to the photo folder)."""
        with _reading(self.output) as index:
            return index.missing_contents()

    def prune(self, dry_run: bool = False) -> PruneReport:
        """Forget the missing photos, with their faces and what was said about those faces.

        ``dry_run`` reports what would go and changes nothing. Pruning is recorded in the history,
        so ``undo()`` brings everything back. Named people stay, even without faces.
        """
        if dry_run:
            with _reading(self.output) as index:
                return _prune_report(index)
        with (
            _writing(self.output) as index,
            self._changing(index),
            History(index).recording("prune") as effects,
        ):
            report = _prune_report(index)
            index.prune_missing()
            effects.append(report.summary())
        return report

    def settle(self) -> ScanOutcome | None:
        """Regroup after deferred changes and rewrite outputs left behind the index; None when all was current."""
        with _writing(self.output) as index:
            if not (index.meta(REGROUP_KEY) or index.meta(STALE_KEY)):
                return None
            with self._changing(index, regroup_needed=bool(index.meta(REGROUP_KEY))) as change:
                pass
            return change.outcome

    @contextmanager
    def _changing(self, index: FaceIndex, defer: bool = False, regroup_needed: bool = True) -> Iterator[_Change]:
        """One change of the index: committed with the regroup, then the outputs rewritten, uninterruptibly.

        The index is marked while its outputs are behind it, so a command killed between the
        commit and the rewrite (even by SIGKILL) gets them rewritten by the next one. A deferred
        change is committed alone and marked for ``settle()``; without ``regroup_needed`` (settling
        outputs that are only behind) the grouping is kept as it is.
        """
        grouping = _grouping(index)
        change = _Change()
        with ExitStack() as later:
            with index.transaction():
                yield change
                if defer:
                    index.set_meta({STALE_KEY: "1", REGROUP_KEY: "1"})
                    return
                if regroup_needed:
                    regroup(index, grouping)
                index.set_meta({STALE_KEY: "1", REGROUP_KEY: ""})
                later.enter_context(signals_deferred())
            change.outcome = self._rewrite_reporting(index, grouping)

    def _rewrite_reporting(self, index: FaceIndex, grouping: GroupingOptions) -> ScanOutcome:
        """``_rewrite``, saying on a full disk that the change itself was made and how to take it back."""
        try:
            return self._rewrite(index, grouping)
        except OSError as error:
            if error.errno not in _WRITE_ERRORS:
                raise
            last = index.db.execute("SELECT max(id) FROM changes").fetchone()[0]
            raise StorageError(
                f"the change was made (#{last}; 'facecluster undo' takes it back), but the albums, people.json"
                f" and report in {self.output} could not be rewritten: {error.strerror}. Free some space and"
                " run any facecluster command: it brings them up to date"
            ) from error

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
        if text is not None and not Path(text).exists() and parse_reference(text)[0] == "face":
            text = str(parse_reference(text)[1])  # f12, as every command writes faces
        if text is not None and text.isdigit() and (vector := gallery.embedding(int(text))) is not None:
            return [(f"face f{text}", vector, int(text))]
        if isinstance(query, int):
            raise PeopleError(f"no face {query} in this index")
        name = "image" if isinstance(query, Image.Image | np.ndarray) else str(query)
        if not isinstance(query, Image.Image | np.ndarray):
            query = Path(query)
            if not query.is_file():
                raise InvalidInput(f"{name}: neither a photo nor a face id of this index")
        analyzer = self._load_analyzer(device, 1)
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
        """Read the people back, rewrite every output the last scan asked for, and mark them current."""
        outcome = read_outcome(index, self.photos, grouping, [])
        write_outputs(outcome, self.output, index.meta("album_mode") or "symlink", bool(index.meta("xmp")))
        index.set_meta({STALE_KEY: ""})
        return outcome

    def _catch_up(self) -> None:
        """Settle what an interrupted command or the review app left behind (when the folder can be written)."""
        with suppress(StorageError, OutputBusy):
            self.settle()


@dataclass
class _Change:
    outcome: ScanOutcome | None = None


@dataclass(frozen=True)
class PruneReport:
    """What ``prune`` forgot (or, in a dry run, would forget)."""

    photos: list[str]
    """One path per missing photo, relative to the photo folder."""
    faces: list[int]
    people: dict[str, int]
    """How many faces each person loses, by label ('p7 "Alice"')."""

    def summary(self, verb: str = "forgot") -> str:
        """One line: '<verb> N missing photos and their M faces (faces lost: ...)'."""
        lost = ", ".join(f"{label} {count}" for label, count in sorted(self.people.items()))
        return f"{verb} {len(self.photos)} missing photos and their {len(self.faces)} faces" + (
            f" (faces lost: {lost})" if lost else ""
        )


def _prune_report(index: FaceIndex) -> PruneReport:
    missing = index.missing_contents()
    people = People(index)
    faces: list[int] = []
    lost: dict[str, int] = {}
    for sha in missing:
        for (face,) in index.db.execute("SELECT id FROM faces WHERE sha256=? ORDER BY id", (sha,)):
            faces.append(face)
            person = people.person_of(face)
            if person is not None:
                label = people.label(person)
                lost[label] = lost.get(label, 0) + 1
    unread = [
        os.fsdecode(row[0])
        for row in index.db.execute("SELECT path FROM photos WHERE missing_since IS NOT NULL AND sha256 IS NULL")
    ]
    return PruneReport(sorted([paths[0] for paths in missing.values()] + unread), faces, lost)


def _grouping(index: FaceIndex) -> GroupingOptions:
    """The grouping options of the index's last scan."""
    return GroupingOptions.from_meta(index.meta("method"), index.meta("threshold"))


@contextmanager
def _reading(output: Path) -> Iterator[FaceIndex]:
    """The index of ``output``, opened read-only (never modified, except that one of an earlier schema is upgraded)."""
    try:
        try:
            index = FaceIndex(output, readonly=True)
        except IndexOutdated:
            with _writing(output):
                pass
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
