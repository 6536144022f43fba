"""The face index: a SQLite database in the output folder, written one photo per transaction.

Tables: ``photos`` (a path below the scanned folder, the size/mtime it had when read, and since
when it is missing), ``contents`` (one row per distinct file content, by SHA-256: its outcome,
size and EXIF), ``faces`` (the faces of a content). A photo's content, faces and path row are
committed together, so a scan killed at any moment leaves every photo either fully indexed or
absent. Paths are stored as bytes (``os.fsencode``), so any file name round-trips.

Faces belong to contents, not paths: a photo moved, renamed or copied keeps its faces (and
everything said about them), and a photo that vanished keeps them too, as *missing*, until the
user prunes it. ``people``, ``memberships`` and ``rejections`` hold people and the user's
corrections (facecluster.storage.people), ``changes`` and ``undo_log`` their history
(facecluster.storage.history), ``successors`` which face of an edited photo took over from which;
 ``meta`` holds the scanned folder and the last scan's options.
Face and person ids are never reused.

An index is checked before anything is written to it: a file that is not a facecluster index
(another program's database, a damaged or newer index) is refused and left untouched.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecluster.errors import IndexOutdated, IndexUnavailable
from facecluster.types import Face

SCHEMA_VERSION = 3
INDEX_FILE = "index.sqlite"
APPLICATION_ID = 0x46434C55
"""``PRAGMA application_id`` of a facecluster index ("FCLU"), so other tools can tell what the file is."""

_FACES = """CREATE TABLE IF NOT EXISTS {name} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL REFERENCES contents(sha256) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    x1 REAL NOT NULL, y1 REAL NOT NULL, x2 REAL NOT NULL, y2 REAL NOT NULL,
    landmarks TEXT NOT NULL,
    score REAL NOT NULL,
    size REAL NOT NULL,
    sharpness REAL NOT NULL,
    embedding BLOB NOT NULL,
    thumbnail BLOB,
    UNIQUE (sha256, idx)
);"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contents (
    sha256 TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('faces', 'no_faces', 'skipped')),
    reason TEXT,
    width INTEGER,
    height INTEGER,
    taken TEXT,
    camera TEXT
);
CREATE TABLE IF NOT EXISTS photos (
    path BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT REFERENCES contents(sha256),
    error TEXT,
    missing_since TEXT
);
CREATE INDEX IF NOT EXISTS photos_sha256 ON photos(sha256);
{faces}
CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS memberships (
    face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    confirmed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS memberships_person ON memberships(person_id);
CREATE TABLE IF NOT EXISTS rejections (
    face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL,
    PRIMARY KEY (face_id, person_id)
);
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    command TEXT NOT NULL,
    effects TEXT NOT NULL,
    undoes INTEGER REFERENCES changes(id),
    undone_by INTEGER REFERENCES changes(id)
);
CREATE TABLE IF NOT EXISTS undo_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id INTEGER NOT NULL REFERENCES changes(id) ON DELETE CASCADE,
    tbl TEXT NOT NULL,
    op TEXT NOT NULL,
    key TEXT NOT NULL,
    old TEXT
);
CREATE INDEX IF NOT EXISTS undo_log_change ON undo_log(change_id);
CREATE TABLE IF NOT EXISTS successors (face_id INTEGER PRIMARY KEY, successor INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS apart (
    person_id INTEGER NOT NULL,
    other_id INTEGER NOT NULL,
    PRIMARY KEY (person_id, other_id),
    CHECK (person_id < other_id)
);
""".replace("{faces}", _FACES.format(name="faces"))

_COLUMNS: dict[int, dict[str, set[str]]] = {
    1: {
        "meta": {"key", "value"},
        "contents": {"sha256", "status", "reason", "width", "height", "taken", "camera"},
        "photos": {"path", "size", "mtime_ns", "sha256", "error"},
        "faces": {
            "id",
            "sha256",
            "idx",
            "x1",
            "y1",
            "x2",
            "y2",
            "landmarks",
            "score",
            "size",
            "sharpness",
            "embedding",
            "thumbnail",
        },
    },
}
_COLUMNS[2] = {
    **_COLUMNS[1],
    "photos": _COLUMNS[1]["photos"] | {"missing_since"},
    "people": {"id", "name"},
    "memberships": {"face_id", "person_id", "confirmed"},
    "rejections": {"face_id", "person_id"},
    "changes": {"id", "time", "command", "effects", "undoes", "undone_by"},
    "undo_log": {"seq", "change_id", "tbl", "op", "key", "old"},
    "successors": {"face_id", "successor"},
}
_COLUMNS[3] = {**_COLUMNS[2], "apart": {"person_id", "other_id"}}
"""The tables (and their columns) each schema version must have."""

_MIGRATE_1_TO_2 = """
ALTER TABLE photos ADD COLUMN missing_since TEXT;
{faces_v2}
INSERT INTO faces_v2 SELECT id, sha256, idx, x1, y1, x2, y2, landmarks, score, size, sharpness, embedding, thumbnail
    FROM faces;
DROP TABLE faces;
ALTER TABLE faces_v2 RENAME TO faces;
CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT UNIQUE);
CREATE TABLE people_v2 (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE);
INSERT INTO people_v2 SELECT id, name FROM people;
DROP TABLE people;
ALTER TABLE people_v2 RENAME TO people;
""".replace("{faces_v2}", _FACES.format(name="faces_v2"))
"""Version 1 reused freed face and person ids and deleted the faces of vanished photos."""


class _Foreign(Exception):
    """The file is not a facecluster index this version can use (the message says why)."""


def _check_schema(db: sqlite3.Connection) -> int | None:
    """The schema version of a facecluster index (None: an empty database); _Foreign otherwise."""
    rows = db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall()
    tables = {row[0] for row in rows} - {"sqlite_sequence"}
    if not tables:
        return None
    version = None
    if "meta" in tables:
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        version = int(row[0]) if row and str(row[0]).isdigit() else None
    if version is None:
        raise _Foreign(f"not a facecluster index (it holds the tables {', '.join(sorted(tables))})")
    if version > SCHEMA_VERSION:
        raise _Foreign(
            f"written by a newer facecluster (index schema {version}; this version reads up to "
            f"{SCHEMA_VERSION}); upgrade facecluster"
        )
    if version not in _COLUMNS:
        raise _Foreign(f"unknown index schema {version}")
    for table, columns in _COLUMNS[version].items():
        if table not in tables:
            if version == 1 and table not in ("meta", "contents", "photos", "faces"):
                continue
            raise _Foreign(f"damaged: the table {table!r} is missing")
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if not columns <= present:
            raise _Foreign(f"damaged: the table {table!r} lacks {', '.join(sorted(columns - present))}")
    return version


@dataclass(frozen=True)
class StoredPhoto:
    """A path's row in the index: the file as it was when read, and its content or why it failed."""

    relative: str
    size: int
    mtime_ns: int
    sha256: str | None = None
    error: str | None = None
    missing_since: str | None = None
    """When a scan last found the path gone (None: present); its content and faces are kept."""


@dataclass(frozen=True)
class StoredContent:
    """A distinct file content (by SHA-256) and what its analysis found."""

    sha256: str
    status: str
    """'faces', 'no_faces' or 'skipped' (could not be decoded; retried by the next scan)."""
    reason: str | None = None
    width: int | None = None
    height: int | None = None
    taken: str | None = None
    camera: str | None = None


@dataclass(frozen=True)
class StoredFace:
    """A face as stored, without its thumbnail."""

    face_id: int
    sha256: str
    box: tuple[float, float, float, float]
    score: float
    size: float
    sharpness: float
    embedding: np.ndarray


def _key(relative: str) -> bytes:
    return os.fsencode(relative)


def _relative(key: bytes) -> str:
    return os.fsdecode(key)


def _open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection, never writing the index.

    SQLite cannot read a WAL database read-only from a folder it cannot write to (read-only media,
    a backup) unless the ``-shm`` file exists; there, when no ``-wal`` file holds changes the
    index lacks, the file is opened as immutable.
    """
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        db.close()
        wal = path.with_name(path.name + "-wal")
        if os.access(path.parent, os.W_OK) or (wal.exists() and wal.stat().st_size > 0):
            raise  # immutable would ignore the changes still in the -wal file
    return sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None)


class FaceIndex:
    """Open (or create) the index in ``folder``; ``readonly`` opens an existing one untouched.

    IndexUnavailable when the file is not a facecluster index this version can use; nothing is
    written to such a file. An index of an earlier schema is upgraded in one transaction.
    """

    def __init__(self, folder: Path, readonly: bool = False) -> None:
        self.path = Path(folder) / INDEX_FILE
        self.closed = False
        self._depth = 0
        try:
            if readonly:
                self.db = _open_readonly(self.path)
                if _check_schema(self.db) != SCHEMA_VERSION:
                    self.db.close()
                    raise IndexOutdated(
                        f"{self.path}: made by an earlier facecluster; any command that changes it "
                        "(a scan, a correction) upgrades it"
                    )
                return
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            version = _check_schema(self.db)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA temp_store=MEMORY")  # no temporary files outside the output folder
            self._prepare(version)
            self.db.execute("PRAGMA foreign_keys=ON")
        except _Foreign as error:
            self.db.close()
            raise IndexUnavailable(f"{self.path}: {error}; the file was left untouched") from None
        except sqlite3.DatabaseError as error:
            raise IndexUnavailable(f"{self.path}: cannot open the face index ({error})") from error

    def _prepare(self, version: int | None) -> None:
        """Create the tables a new index (``version`` None) lacks, or upgrade an earlier schema; all or nothing.

        Runs with foreign keys off: an upgrade rebuilds tables that others refer to.
        """
        with self.transaction():
            if version == 1:
                self._run(_MIGRATE_1_TO_2)
            self._run(_SCHEMA)
            if version != SCHEMA_VERSION:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                self.db.execute(f"PRAGMA application_id={APPLICATION_ID}")

    def _run(self, script: str) -> None:
        """Each statement of ``script``, inside the caller's transaction (executescript would commit it)."""
        for statement in script.split(";"):
            if statement.strip():
                self.db.execute(statement)

    def close(self) -> None:
        self.db.close()
        self.closed = True

    def photos(self) -> dict[str, StoredPhoto]:
        """Every indexed path, present or missing."""
        rows = self.db.execute("SELECT path, size, mtime_ns, sha256, error, missing_since FROM photos")
        return {_relative(r[0]): StoredPhoto(_relative(r[0]), *r[1:]) for r in rows}

    def present(self) -> int:
        """How many indexed paths a scan last found (not missing)."""
        return int(self.db.execute("SELECT count(*) FROM photos WHERE missing_since IS NULL").fetchone()[0])

    def has_content(self, sha256: str) -> bool:
        """Whether this content was analysed already (skipped contents are retried)."""
        row = self.db.execute("SELECT status FROM contents WHERE sha256=?", (sha256,)).fetchone()
        return row is not None and row[0] != "skipped"

    def record_paths(self, entries: Iterable[StoredPhoto]) -> None:
        """Upsert path rows in one transaction."""
        with self.transaction():
            self._upsert_paths(entries)

    def record_analysis(self, content: StoredContent, faces: list[Face], paths: list[StoredPhoto]) -> None:
        """Store one analysed content, its faces and every path holding it, atomically.

        A content analysed before keeps its faces (and their ids) unless this analysis replaces a
        failed one.
        """
        sha256 = content.sha256
        with self.transaction():
            if self.has_content(sha256):
                self._upsert_paths(paths)
                return
            self.db.execute("DELETE FROM faces WHERE sha256=?", (sha256,))
            self.db.execute(
                "INSERT OR REPLACE INTO contents VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sha256, content.status, content.reason, content.width, content.height, content.taken, content.camera),
            )
            self.db.executemany(
                "INSERT INTO faces (sha256, idx, x1, y1, x2, y2, landmarks, score, size, sharpness, embedding,"
                " thumbnail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        sha256,
                        i,
                        *face.box,
                        json.dumps([[round(x, 2), round(y, 2)] for x, y in face.landmarks]),
                        face.score,
                        face.quality.size,
                        face.quality.sharpness,
                        np.asarray(face.embedding, dtype=np.float32).tobytes(),
                        face.thumbnail,
                    )
                    for i, face in enumerate(faces)
                ],
            )
            self._upsert_paths(paths)

    def mark_missing(self, relatives: Iterable[str], when: str) -> None:
        """These paths are gone: keep them (content, faces, corrections) as missing since ``when``."""
        with self.transaction():
            self.db.executemany(
                "UPDATE photos SET missing_since=? WHERE path=? AND missing_since IS NULL",
                ((when, _key(r)) for r in relatives),
            )

    def mark_present(self, relatives: Iterable[str]) -> None:
        """These missing paths are back, unchanged."""
        with self.transaction():
            self.db.executemany("UPDATE photos SET missing_since=NULL WHERE path=?", ((_key(r),) for r in relatives))

    def settle_moves(self) -> int:
        """Forget missing paths whose content is present at another path (a move); return how many."""
        with self.transaction():
            return self.db.execute(
                "DELETE FROM photos WHERE missing_since IS NOT NULL AND sha256 IN"
                " (SELECT sha256 FROM photos WHERE missing_since IS NULL AND error IS NULL AND sha256 IS NOT NULL)"
            ).rowcount

    def missing_contents(self) -> dict[str, list[str]]:
        """Contents no present path holds -> their missing paths."""
        rows = self.db.execute(
            "SELECT sha256, path FROM photos WHERE missing_since IS NOT NULL AND sha256 NOT IN"
            " (SELECT sha256 FROM photos WHERE missing_since IS NULL AND error IS NULL AND sha256 IS NOT NULL)"
            " ORDER BY path"
        )
        missing: dict[str, list[str]] = {}
        for sha, path in rows:
            missing.setdefault(sha, []).append(_relative(path))
        return missing

    def prune_missing(self) -> None:
        """Forget every missing path, and the contents (with their faces) no path holds any more."""
        with self.transaction():
            self.db.execute("DELETE FROM photos WHERE missing_since IS NOT NULL")
            self._drop_orphans()

    def orphans(self) -> list[str]:
        """Contents no path row refers to (a photo changed in place and its old content)."""
        rows = self.db.execute(
            "SELECT sha256 FROM contents WHERE sha256 NOT IN (SELECT sha256 FROM photos WHERE sha256 IS NOT NULL)"
        )
        return [row[0] for row in rows]

    def drop_orphans(self) -> None:
        """Forget contents (and their faces) that no path refers to, e.g. after a file changed."""
        with self.transaction():
            self._drop_orphans()

    def _drop_orphans(self) -> None:
        orphans = self.orphans()
        self.db.executemany(
            "DELETE FROM memberships WHERE face_id IN (SELECT id FROM faces WHERE sha256=?)", ((s,) for s in orphans)
        )
        self.db.executemany(
            "DELETE FROM rejections WHERE face_id IN (SELECT id FROM faces WHERE sha256=?)", ((s,) for s in orphans)
        )
        self.db.executemany("DELETE FROM faces WHERE sha256=?", ((s,) for s in orphans))
        self.db.executemany("DELETE FROM contents WHERE sha256=?", ((s,) for s in orphans))

    def contents(self) -> dict[str, StoredContent]:
        """Every analysed content, by SHA-256."""
        rows = self.db.execute("SELECT sha256, status, reason, width, height, taken, camera FROM contents")
        return {r[0]: StoredContent(*r) for r in rows}

    def faces(self, embeddings: bool = True) -> list[StoredFace]:
        """Every face of the index (missing photos' too), in id order.

        Without ``embeddings`` their vectors are left empty.
        """
        vector = "embedding" if embeddings else "NULL"
        rows = self.db.execute(
            f"SELECT id, sha256, x1, y1, x2, y2, score, size, sharpness, {vector} FROM faces ORDER BY id"
        )
        empty = np.zeros(0, np.float32)
        return [
            StoredFace(
                r[0],
                r[1],
                (r[2], r[3], r[4], r[5]),
                r[6],
                r[7],
                r[8],
                np.frombuffer(r[9], np.float32) if r[9] else empty,
            )
            for r in rows
        ]

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def root(self) -> Path | None:
        """The photo folder this index was last scanned from (None before its first scan)."""
        value = self.meta("root")
        return Path(os.fsdecode(bytes.fromhex(value))) if value else None

    def set_meta(self, values: dict[str, str]) -> None:
        with self.transaction():
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())

    def thumbnail(self, face_id: int) -> bytes:
        """The stored JPEG thumbnail of a face (empty when none)."""
        row = self.db.execute("SELECT thumbnail FROM faces WHERE id=?", (face_id,)).fetchone()
        return bytes(row[0]) if row and row[0] else b""

    def _upsert_paths(self, entries: Iterable[StoredPhoto]) -> None:
        """Present paths; one that cannot be read now keeps the content it held (and so its faces)."""
        self.db.executemany(
            "INSERT INTO photos VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (path) DO UPDATE SET size=excluded.size,"
            " mtime_ns=excluded.mtime_ns, sha256=coalesce(excluded.sha256, photos.sha256), error=excluded.error,"
            " missing_since=NULL",
            ((_key(e.relative), e.size, e.mtime_ns, e.sha256, e.error) for e in entries),
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT around a block, rolled back on any exception.

        A block inside another is a savepoint of the outer transaction: its failure undoes its own
        changes only, and nothing is committed before the outermost block ends.
        """
        if self._depth:
            savepoint = f"nested_{self._depth}"
            self.db.execute(f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield
            except BaseException:
                if self.db.in_transaction:  # SQLite may have rolled everything back already (disk full)
                    self.db.execute(f"ROLLBACK TO {savepoint}")
                raise
            finally:
                self._depth -= 1
                if self.db.in_transaction:
                    self.db.execute(f"RELEASE {savepoint}")
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self._depth = 0
        self.db.execute("COMMIT")


class ThumbnailReader:
    """Reads face thumbnails on demand: through ``index`` while it is open, else on a brief read-only connection.

    Handed out with the faces of a scan or a correction, so a thumbnail can still be read (by a
    caller of the library) after the connection that wrote the faces is closed. No connection is
    kept open beyond its use, so a later writer stays the last to close and checkpoints the index:
    one read (``__call__``) or one batch (``many``) opens and closes its own, and inside a
    ``ThumbnailReader.reading()`` block the calls of that thread share one per index, closed on
    leaving the block.

    Safe to call from any thread: ``index``'s own connection is used only by the thread that
    opened it (sqlite3 refuses the others, who then read on a connection of their own).
    """

    _BATCH = 500
    """Face ids per query of ``many`` (well below SQLite's limit on bound parameters)."""
    _local = threading.local()
    """Per thread: ``connections`` (index path -> connection) while a ``reading()`` block is open."""

    def __init__(self, index: FaceIndex) -> None:
        self.index = index

    def __call__(self, face_id: int) -> bytes:
        """The JPEG thumbnail of a face (empty when none)."""
        return self.many([face_id]).get(face_id, b"")

    def many(self, face_ids: Iterable[int]) -> dict[int, bytes]:
        """face id -> JPEG thumbnail of the faces given, read in a few queries on one connection.

        Faces without a thumbnail (or no longer in the index) are left out.
        """
        ids = sorted({int(face_id) for face_id in face_ids})
        if not self.index.closed:
            try:
                return self._read(self.index.db, ids)
            except sqlite3.ProgrammingError:  # another thread's connection, or closed meanwhile
                pass
        with self._connection() as db:
            return self._read(db, ids)

    def _read(self, db: sqlite3.Connection, ids: list[int]) -> dict[int, bytes]:
        found: dict[int, bytes] = {}
        for start in range(0, len(ids), self._BATCH):
            chunk = ids[start : start + self._BATCH]
            rows = db.execute(f"SELECT id, thumbnail FROM faces WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            found.update((row[0], bytes(row[1])) for row in rows if row[1])
        return found

    @classmethod
    @contextmanager
    def reading(cls) -> Iterator[None]:
        """A block in which this thread's reads of closed indexes share one read-only connection per index.

        Reading thousands of thumbnails one by one (writing a report) then costs one query each
        instead of a connection each; every connection is closed on leaving the block. Nested
        blocks share the outer one's connections.
        """
        if getattr(cls._local, "connections", None) is not None:
            yield
            return
        connections: dict[Path, sqlite3.Connection] = {}
        cls._local.connections = connections
        try:
            yield
        finally:
            cls._local.connections = None
            for db in connections.values():
                db.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection: this thread's one of a ``reading()`` block, else a brief one."""
        path = self.index.path
        connections = getattr(self._local, "connections", None)
        try:
            if connections is not None:
                if path not in connections:
                    connections[path] = _open_readonly(path)
                yield connections[path]
                return
            db = _open_readonly(path)
            try:
                yield db
            finally:
                db.close()
        except sqlite3.DatabaseError as error:
            raise IndexUnavailable(f"{path}: cannot read the face index ({error})") from error
