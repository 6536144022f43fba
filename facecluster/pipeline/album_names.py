"""Album folder names from person names: one path component, never escaping people/."""

from __future__ import annotations

import re
import unicodedata

UNSORTED = "unsorted"
"""people/unsorted/: photos of faces that belong to no person."""
NO_FACES = "no-faces.txt"
"""people/no-faces.txt: photos in which no face was found."""
RESERVED_FOLDERS = {UNSORTED.casefold(), NO_FACES.casefold()}
"""Casefolded names in people/ that no person album may take."""

MAX_FOLDER_BYTES = 120
"""UTF-8 bytes kept of a name (file systems allow 255 per component)."""

_WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"{p}{n}" for p in ("com", "lpt") for n in range(1, 10)}
_UNSAFE = re.compile('[\x00-\x1f\x7f/\\\\:*?"<>|\u202a-\u202e\u2066-\u2069]')
"""Separators, control and Windows-forbidden characters, and bidirectional overrides (which can
make a folder name display as something else)."""


def default_key(person_id: int) -> str:
    """The album of an unnamed person: 'person_0007'."""
    return f"person_{person_id:04d}"


def folder_name(name: str | None, person_id: int, reserved: set[str]) -> str:
    """A folder-safe album name for a person; ``default_key`` when the name leaves nothing usable.

    ``reserved`` holds casefolded names that may not be used (other albums, 'unsorted', ...).
    Path separators, control, Windows-forbidden and bidirectional-override characters become '_';
    leading and trailing dots and spaces go; long names are cut at a character boundary; a clash
    gets ' (id)' added.
    """
    if not name:
        return default_key(person_id)
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", name)).strip(" .")
    cleaned = cleaned.encode()[:MAX_FOLDER_BYTES].decode(errors="ignore").strip(" .")
    if not cleaned or cleaned.split(".")[0].casefold() in _WINDOWS_RESERVED:
        return default_key(person_id)
    if cleaned.casefold() in reserved:
        cleaned = f"{cleaned} ({person_id})"
    return cleaned
