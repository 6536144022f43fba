"""The index: nested transactions, the upgrade of older schemas, and foreign or damaged files refused untouched."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from facecluster import IndexUnavailable, Library
from facecluster.storage.index import APPLICATION_ID, INDEX_FILE, SCHEMA_VERSION, FaceIndex


def names(index: FaceIndex) -> list[str]:
    return [row[0] for row in index.db.execute("SELECT name FROM people ORDER BY id")]


def test_a_failed_inner_block_undoes_only_itself(tmp_path):
    index = FaceIndex(tmp_path)
    with index.transaction():
        index.db.execute("INSERT INTO people (name) VALUES ('kept')")
        with pytest.raises(ValueError), index.transaction():
            index.db.execute("INSERT INTO people (name) VALUES ('undone')")
            raise ValueError("inner")
        with index.transaction():
            index.db.execute("INSERT INTO people (name) VALUES ('also kept')")
    assert names(index) == ["kept", "also kept"]
    index.close()


def test_a_failed_outer_block_commits_nothing(tmp_path):
    index = FaceIndex(tmp_path)
    with pytest.raises(RuntimeError), index.transaction():
        with index.transaction():
            index.db.execute("INSERT INTO people (name) VALUES ('inner')")
        raise RuntimeError("outer")
    assert names(index) == []
    other = FaceIndex(tmp_path, readonly=True)
    assert names(other) == []
    other.close()
    index.close()


def test_a_full_disk_inside_a_nested_block_reports_the_full_disk(tmp_path):
    import sqlite3

    index = FaceIndex(tmp_path)
    pages = index.db.execute("PRAGMA page_count").fetchone()[0]
    index.db.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(sqlite3.OperationalError, match="full"), index.transaction(), index.transaction():
        index.db.execute("INSERT INTO meta VALUES ('big', ?)", ("x" * 100_000,))
    assert not index.db.in_transaction
    index.db.execute("INSERT INTO people (name) VALUES ('after')")
    assert names(index) == ["after"]
    index.close()


SCHEMA_V1 = """
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
"""The index schema of facecluster 0.x (schema 1), to check that such an index is upgraded."""


def write_v1_copy(index: Path) -> None:
    """Rewrite ``index`` (schema 2) as schema 1 holds it: same rows, freed ids reusable, no missing photos."""
    old = index.with_name("v1.sqlite")
    with sqlite3.connect(old) as db:
        db.executescript(SCHEMA_V1)
        db.execute("ATTACH ? AS current", (str(index),))
        db.execute("INSERT INTO meta SELECT * FROM current.meta")
        db.execute("UPDATE meta SET value='1' WHERE key='schema'")
        for table in ("contents", "faces", "people", "memberships", "rejections"):
            db.execute(f"INSERT INTO {table} SELECT * FROM current.{table}")
        db.execute("INSERT INTO photos SELECT path, size, mtime_ns, sha256, error FROM current.photos")
    db.close()
    for suffix in ("", "-wal", "-shm"):
        index.with_name(index.name + suffix).unlink(missing_ok=True)
    old.rename(index)


def test_an_index_of_schema_1_is_upgraded_with_everything_in_it(library):
    with library.corrections() as edit:
        edit.name("p1", "Alice")
    people = [(p.id, p.name, [f.face_id for f in p.faces]) for p in library.people()]
    write_v1_copy(library.output / INDEX_FILE)
    reopened = Library.open(library.output)
    assert [(p.id, p.name, [f.face_id for f in p.faces]) for p in reopened.people()] == people
    with sqlite3.connect(library.output / INDEX_FILE) as db:
        assert db.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == (str(SCHEMA_VERSION),)
        assert db.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)
    with reopened.corrections() as edit:
        edit.merge("Alice", "p2")
    reopened.undo()
    assert [(p.id, p.name, [f.face_id for f in p.faces]) for p in reopened.people()] == people


def another_programs_database(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        db.execute("INSERT INTO notes (text) VALUES ('keep me')")
    db.close()


def run_sql(path: Path, sql: str) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(sql)
    db.close()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda path: path.unlink() or another_programs_database(path), "not a facecluster index"),
        (lambda path: run_sql(path, "DROP TABLE memberships"), "table 'memberships' is missing"),
        (lambda path: run_sql(path, "DROP TABLE faces"), "table 'faces' is missing"),
        (lambda path: run_sql(path, "ALTER TABLE memberships DROP COLUMN confirmed"), "'memberships' lacks confirmed"),
        (lambda path: run_sql(path, "UPDATE meta SET value='9' WHERE key='schema'"), "newer facecluster"),
    ],
)
def test_a_foreign_or_damaged_index_is_refused_and_never_written(library, damage, message):
    index = library.output / INDEX_FILE
    damage(index)
    before = index.read_bytes()
    for attempt in (lambda: Library.open(library.output), library.scan, lambda: library.corrections().__enter__()):
        with pytest.raises(IndexUnavailable, match=message):
            attempt()
    assert index.read_bytes() == before
    assert not index.with_name(index.name + "-wal").exists()
    code = subprocess.run(
        [sys.executable, "-m", "facecluster", "people", "-o", str(library.output)], capture_output=True, text=True
    )
    assert code.returncode == 4 and message in code.stderr and "Traceback" not in code.stderr
    assert "move it aside" not in code.stderr and index.read_bytes() == before
