"""The history of what the user changed: each correction with its time, command and effects, and its undo.

While a change is recorded, triggers on the people, correction and photo tables copy every row
the change inserts, updates or deletes into ``undo_log`` (the old row as JSON, blobs as hex). An
undo replays those rows backwards, itself recorded as a change, so the index returns to exactly
what it held before; the grouping that follows recomputes what nobody said. Regrouping is never
recorded: it is derived from the corrections.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from facecluster.errors import PeopleError
from facecluster.storage.index import FaceIndex

LOGGED = {
    "people": ("id",),
    "memberships": ("face_id",),
    "rejections": ("face_id", "person_id"),
    "apart": ("person_id", "other_id"),
    "photos": ("path",),
    "contents": ("sha256",),
    "faces": ("id",),
}
"""The tables a change may touch, with their keys."""
_BLOBS = frozenset({"path", "embedding", "thumbnail"})


@dataclass(frozen=True)
class Change:
    """One recorded change: ``#id`` in ``facecluster history``."""

    id: int
    time: str
    """UTC, ISO 8601."""
    command: str
    """What the user ran, e.g. 'merge p3 p7'."""
    effects: list[str]
    """What it did, one line per effect, in the words the CLI printed."""
    undoes: int | None = None
    """The change this one undid (for an undo)."""
    undone_by: int | None = None
    """The undo that took this change back, if any."""


def _value(table: str, row: str, column: str) -> str:
    """SQL for a column of the trigger's old/new row, as JSON can hold it."""
    if column in _BLOBS:
        return f"CASE WHEN {row}.{column} IS NULL THEN NULL ELSE hex({row}.{column}) END"
    return f"{row}.{column}"


class History:
    """The change history of an open, writable FaceIndex."""

    def __init__(self, index: FaceIndex) -> None:
        self.index = index
        self.db = index.db
        self._columns = {table: [row[1] for row in self.db.execute(f"PRAGMA table_info({table})")] for table in LOGGED}
        self._install()

    def _install(self) -> None:
        """Temporary triggers of this connection that log row changes while ``temp.recording`` names a change."""
        self.db.execute("PRAGMA recursive_triggers=ON")  # so rows an INSERT OR REPLACE deletes are logged too
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS recording (change_id INTEGER)")
        active = "(SELECT change_id FROM temp.recording)"
        for table, keys in LOGGED.items():
            columns = self._columns[table]
            old = "json_object(" + ", ".join(f"'{c}', {_value(table, 'old', c)}" for c in columns) + ")"
            for op, row, body in (
                ("INSERT", "new", "NULL"),
                ("UPDATE", "new", old),
                ("DELETE", "old", old),
            ):
                key = "json_array(" + ", ".join(_value(table, row, k) for k in keys) + ")"
                self.db.execute(
                    f"CREATE TEMP TRIGGER IF NOT EXISTS log_{table}_{op.lower()} AFTER {op} ON main.{table}"
                    f" WHEN {active} IS NOT NULL BEGIN"
                    f" INSERT INTO undo_log (change_id, tbl, op, key, old) VALUES ({active}, '{table}', '{op}', {key},"
                    f" {body}); END"
                )

    @contextmanager
    def recording(self, command: str, undoes: int | None = None, keep: bool = False) -> Iterator[list[str]]:
        """Record the block's row changes as one change; the block appends its effect lines to the list.

        Must run inside a transaction of the index, so the change and its log commit together. A
        block that changed nothing leaves no change behind, unless ``keep``.
        """
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        command = _text(command)
        change = self.db.execute(
            "INSERT INTO changes (time, command, effects, undoes) VALUES (?, ?, '[]', ?)", (now, command, undoes)
        ).lastrowid
        self.db.execute("DELETE FROM temp.recording")
        self.db.execute("INSERT INTO temp.recording VALUES (?)", (change,))
        effects: list[str] = []
        try:
            yield effects
        finally:
            self.db.execute("DELETE FROM temp.recording")
        logged = self.db.execute("SELECT 1 FROM undo_log WHERE change_id=? LIMIT 1", (change,)).fetchone()
        if logged is None and not keep:
            self.db.execute("DELETE FROM changes WHERE id=?", (change,))
            return
        self.db.execute(
            "UPDATE changes SET command=?, effects=? WHERE id=?",
            (command or "; ".join(effects), json.dumps(effects), change),
        )

    def last_undoable(self) -> Change:
        """The newest change that is not an undo and not undone yet; PeopleError when there is none."""
        found = read_changes(self.db, 1, undoable=True)
        if not found:
            raise PeopleError("nothing to undo ('facecluster history' lists what was done)")
        return found[0]

    def undo(self, change: Change) -> int:
        """Put back every row ``change`` touched, as one new change; return the new change's id.

        Rows about faces that no longer exist (pruned, or re-analysed after an edit, since) cannot
        come back: the undo says how many. People that a later regrouping dropped are re-created.
        """
        log = self.db.execute(
            "SELECT tbl, op, key, old FROM undo_log WHERE change_id=? ORDER BY seq DESC", (change.id,)
        ).fetchall()
        with self.recording(f"undo #{change.id}", undoes=change.id, keep=True) as effects:
            lost = sum(
                not self._revert(table, op, json.loads(key), json.loads(old) if old else None)
                for table, op, key, old in log
            )
            effects.extend(f"undone: {line}" for line in change.effects)
            if lost:
                effects.append(
                    f"{lost} of its {len(log)} recorded rows could not be restored: their faces were pruned, "
                    "analysed anew (an edited photo) or placed by a later correction since"
                )
            undo = int(self.db.execute("SELECT change_id FROM temp.recording").fetchone()[0])
        self.db.execute("UPDATE changes SET undone_by=? WHERE id=?", (undo, change.id))
        return undo

    def _face(self, face: object) -> object:
        """The face that now stands for ``face``: itself, or the face of the edited photo that took over from it."""
        seen = set()
        while (
            self.db.execute("SELECT 1 FROM faces WHERE id=?", (face,)).fetchone() is None
            and face not in seen
            and (row := self.db.execute("SELECT successor FROM successors WHERE face_id=?", (face,)).fetchone())
        ):
            seen.add(face)
            face = row[0]
        return face

    def _revert(self, table: str, op: str, key: list[object], old: dict[str, object] | None) -> bool:
        """Put one logged row back as it was; False when it refers to a face or content gone for good."""
        keys = LOGGED[table]
        where = " AND ".join(f"{k}=?" for k in keys)
        key_values = [self._face(v) if k == "face_id" else _decoded(k, v) for k, v in zip(keys, key, strict=True)]
        if old is not None and "face_id" in old and table in ("memberships", "rejections"):
            old = {**old, "face_id": self._face(old["face_id"])}
        try:
            if op == "INSERT":
                self.db.execute(f"DELETE FROM {table} WHERE {where}", key_values)
                return True
            assert old is not None
            columns = list(old)
            values = [_decoded(c, old[c]) for c in columns]
            if table == "memberships":  # its person may have been dropped, unnamed and empty, by a regroup
                self.db.execute("INSERT OR IGNORE INTO people (id, name) VALUES (?, NULL)", (old["person_id"],))
            if op == "DELETE":
                if table == "memberships":  # a grouping's guess made since yields; a later correction does not
                    self.db.execute("DELETE FROM memberships WHERE face_id=? AND confirmed=0", (old["face_id"],))
                restored = self.db.execute(
                    f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    values,
                ).rowcount
                if not restored and table == "memberships":
                    return False
            else:
                assignments = ", ".join(f"{c}=?" for c in columns)
                self.db.execute(f"UPDATE OR IGNORE {table} SET {assignments} WHERE {where}", [*values, *key_values])
        except sqlite3.IntegrityError:
            return False
        return True


def read_changes(db: sqlite3.Connection, limit: int | None = None, undoable: bool = False) -> list[Change]:
    """The recorded changes, newest first (at most ``limit``; only those ``undo`` could take back, if asked)."""
    where = " WHERE undoes IS NULL AND undone_by IS NULL" if undoable else ""
    rows = db.execute(
        f"SELECT id, time, command, effects, undoes, undone_by FROM changes{where} ORDER BY id DESC LIMIT ?",
        (-1 if limit is None else limit,),
    )
    return [Change(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]


def _text(text: str) -> str:
    """Text as SQLite can store it: bytes that were not UTF-8 (surrogate escapes) become U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _decoded(column: str, value: object) -> object:
    return bytes.fromhex(value) if column in _BLOBS and isinstance(value, str) else value
