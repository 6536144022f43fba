"""The index's transactions: nested blocks are savepoints, and nothing is committed before the outer block ends."""

from __future__ import annotations

import pytest

from facecluster.storage.index import FaceIndex


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
