"""Writing outputs safely: atomic file replacement, folder swaps, and file names shown as valid text."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path

MAX_NAME_BYTES = 255
"""The longest file name, in bytes, written into the output folder: what Linux file systems (ext4,
XFS, Btrfs) allow, and never more than APFS and NTFS allow (255 UTF-16 units)."""
_TEMPORARY_EXTRA = len("." + "-" + "12345678" + ".tmp")
"""What a temporary file's name adds to the name it stands for: a dot, a dash, 8 random characters, '.tmp'."""


def display_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable file-name bytes) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # surrogates that did not come from undecodable bytes
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def fit_name(name: str, keep: str = "", limit: int = MAX_NAME_BYTES) -> str:
    """``name + keep`` as a file name of at most ``limit`` bytes (``fs_bytes``).

    A longer one keeps ``keep`` (an extension) and as much of ``name`` as fits, cut between two
    characters, then '~' and 12 hex digits of the SHA-256 of the whole ``name + keep``: the same
    name every run, and different for different names. A ``keep`` too long to fit is cut as well.
    """
    whole = name + keep
    if len(fs_bytes(whole)) <= limit:
        return whole
    tail = f"~{hashlib.sha256(fs_bytes(whole)).hexdigest()[:12]}{keep}"
    room = limit - len(fs_bytes(tail))
    if room < 0:
        return fit_name(whole, "", limit)
    kept = 0
    for character in name:
        size = len(fs_bytes(character))
        if size > room:
            break
        room -= size
        kept += 1
    return name[:kept] + tail


def temporary_prefix(name: str) -> str:
    """``.<name>-``, with ``name`` shortened (``fit_name``) so that the prefix, 8 random characters and
    '.tmp' stay within MAX_NAME_BYTES: a temporary file named after the file it becomes."""
    return f".{fit_name(name, limit=MAX_NAME_BYTES - _TEMPORARY_EXTRA)}-"


def write_atomic(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    Readers see either the old file or the complete new one. With ``sync`` the data is flushed
    to disk before the rename, so a crash cannot leave an empty or truncated file either.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=temporary_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            if sync:
                os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def swap_in(build: Path, folder: Path, old_prefix: str) -> None:
    """Put ``build`` in place of ``folder``: old aside (in a fresh ``old_prefix`` folder), new in, old deleted."""
    if not folder.exists() and not folder.is_symlink():
        os.rename(build, folder)
        return
    trash = fresh_folder(folder.parent, old_prefix) / folder.name
    os.rename(folder, trash)
    os.rename(build, folder)
    shutil.rmtree(trash.parent, ignore_errors=True)


def fresh_folder(parent: Path, prefix: str) -> Path:
    """A new empty folder ``parent/<prefix><random>``, with the usual permissions (umask applies)."""
    while True:
        folder = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def fs_bytes(text: str) -> bytes:
    """The bytes of a path string decoded with os.fsdecode (undecodable bytes kept as they were)."""
    return text.encode("utf-8", "surrogateescape")


_UMASK: int | None = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


def holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a file (not a link) holding exactly ``data``, so it need not be written again."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False
