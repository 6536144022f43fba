"""The face index: a SQLite database in the output folder, written one photo per transaction.

Tables: ``photos`` (a path below the scanned folder and the size/mtime it had when read),
``contents`` (one row per distinct file content, by SHA-256: its outcome, size and EXIF),
``faces`` (the faces of a content). A photo's content, faces and path row are committed
together, so a scan killed at any moment leaves every photo either fully indexed or absent.
Paths are stored as bytes (``os.fsencode``), so any file name round-trips. ``people``,
``memberships`` and ``rejections`` hold people and the user's corrections (facecluster.storage.people);
``meta`` holds the scanned folder and the grouping options of the last scan.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecluster.errors import IndexUnavailable
from facecluster.types import Face

SCHEMA_VERSION = 1
INDEX_FILE = "index.sqlite"

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
    error TEXT
);
CREATE INDEX IF NOT EXISTS photos_sha256 ON photos(sha256);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY,
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
);
CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS memberships (
    face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    confirmed INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rejections (
    face_id INTEGER NOT NULL REFERENCES faces(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL,
    PRIMARY KEY (face_id, person_id)
);
"""


@dataclass(frozen=True)
class StoredPhoto:
    """A path's row in the index: the file as it was when read, and its content or why it failed."""

    relative: str
    size: int
    mtime_ns: int
    sha256: str | None = None
    error: str | None = None


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


def _open_readonly(path: Path) -> tuple[sqlite3.Connection, set[str]]:
    """A read-only connection and the index's table names, never writing the index.

    SQLite cannot read a WAL database read-only from a folder it cannot write to (read-only media,
    a backup) unless the ``-shm`` file exists; there, when no ``-wal`` file holds changes the
    index lacks, the file is opened as immutable.
    """
    query = "SELECT name FROM sqlite_master WHERE type='table'"
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        return db, {row[0] for row in db.execute(query)}
    except sqlite3.OperationalError:
        db.close()
        wal = path.with_name(path.name + "-wal")
        if os.access(path.parent, os.W_OK) or (wal.exists() and wal.stat().st_size > 0):
            raise  # immutable would ignore the changes still in the -wal file
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None)
    return db, {row[0] for row in db.execute(query)}


class FaceIndex:
    """Open (or create) the index in ``folder``; ``readonly`` opens an existing one untouched."""

    def __init__(self, folder: Path, readonly: bool = False) -> None:
        self.path = Path(folder) / INDEX_FILE
        self.closed = False
        self._depth = 0
        try:
            if readonly:
                self.db, tables = _open_readonly(self.path)
                if not {"meta", "photos", "contents", "faces"} <= tables:
                    raise IndexUnavailable(
                        f"{self.path}: not a current face index; run 'facecluster scan' to update it"
                    )
                return
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
            version = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if version is None:
                self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(version[0]) != SCHEMA_VERSION:
                raise IndexUnavailable(f"{self.path}: index schema {version[0]}, this version reads {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            raise IndexUnavailable(f"{self.path}: cannot open the face index ({error})") from error

    def close(self) -> None:
        self.db.close()
        self.closed = True

    def photos(self) -> dict[str, StoredPhoto]:
        """Every indexed path."""
        rows = self.db.execute("SELECT path, size, mtime_ns, sha256, error FROM photos")
        return {_relative(r[0]): StoredPhoto(_relative(r[0]), r[1], r[2], r[3], r[4]) for r in rows}

    def has_content(self, sha256: str) -> bool:
        """Whether this content was analysed already (skipped contents are retried)."""
        row = self.db.execute("SELECT status FROM contents WHERE sha256=?", (sha256,)).fetchone()
        return row is not None and row[0] != "skipped"

    def record_paths(self, entries: Iterable[StoredPhoto]) -> None:
        """Upsert path rows in one transaction."""
        with self.transaction():
            self._upsert_paths(entries)

    def record_analysis(self, content: StoredContent, faces: list[Face], paths: list[StoredPhoto]) -> None:
        """Store one analysed content, its faces and every path holding it, atomically."""
        sha256 = content.sha256
        with self.transaction():
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

    def remove_paths(self, relatives: Iterable[str]) -> None:
        """Forget these paths and every content no path refers to any more."""
        with self.transaction():
            self.db.executemany("DELETE FROM photos WHERE path=?", ((_key(r),) for r in relatives))
            self._drop_orphans()

    def drop_orphans(self) -> None:
        """Forget contents (and their faces) that no path refers to, e.g. after a file changed."""
        with self.transaction():
            self._drop_orphans()

    def _drop_orphans(self) -> None:
        self.db.execute("DELETE FROM contents WHERE sha256 NOT IN (SELECT sha256 FROM photos WHERE sha256 IS NOT NULL)")

    def contents(self) -> dict[str, StoredContent]:
        """Every analysed content, by SHA-256."""
        rows = self.db.execute("SELECT sha256, status, reason, width, height, taken, camera FROM contents")
        return {r[0]: StoredContent(*r) for r in rows}

    def faces(self, embeddings: bool = True) -> list[StoredFace]:
        """Every face of a content some readable path still holds, in id order.

        Without ``embeddings`` their vectors are left empty.
        """
        vector = "embedding" if embeddings else "NULL"
        rows = self.db.execute(
            f"SELECT id, sha256, x1, y1, x2, y2, score, size, sharpness, {vector} FROM faces"
            " WHERE sha256 IN (SELECT sha256 FROM photos WHERE error IS NULL) ORDER BY id"
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
        self.db.executemany(
            "INSERT OR REPLACE INTO photos VALUES (?, ?, ?, ?, ?)",
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
    kept open beyond one read, so a later writer stays the last to close and checkpoints the index.
    """

    def __init__(self, index: FaceIndex) -> None:
        self.index = index

    def __call__(self, face_id: int) -> bytes:
        """The JPEG thumbnail of a face (empty when none)."""
        if not self.index.closed:
            return self.index.thumbnail(face_id)
        index = FaceIndex(self.index.path.parent, readonly=True)
        try:
            return index.thumbnail(face_id)
        finally:
            index.close()
