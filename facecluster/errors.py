"""One error hierarchy for the whole library; the CLI maps these classes to exit codes in one table."""

from __future__ import annotations


class FaceclusterError(Exception):
    """Anything facecluster refuses or cannot do; the message says why."""


class InvalidInput(FaceclusterError):
    """The request cannot be carried out as given: a missing folder, a bad option, an unknown person."""


class ImageLoadError(InvalidInput):
    """A file could not be turned into an image."""


class DeviceError(InvalidInput):
    """The requested device cannot be used."""


class ClusterError(InvalidInput):
    """A Dask cluster that cannot be used: unreachable, without workers, or running another facecluster."""


class PeopleError(InvalidInput):
    """A correction that cannot be made, or a person or face that does not exist."""


class CorrectionsNotSupported(InvalidInput):
    """The grouping method cannot honour the user's corrections (HDBSCAN)."""


class LabelError(InvalidInput):
    """A label file that cannot be used for evaluation."""


class NoLibrary(InvalidInput):
    """The output folder holds no face index yet."""


class OutputBusy(FaceclusterError):
    """Another scan or correction holds the output folder."""


class ClusterLost(FaceclusterError):
    """The Dask scheduler went away during a scan (what was analysed before is saved)."""


class StorageError(FaceclusterError):
    """The output folder or its index cannot be written (read-only, disk full, ...)."""


class IndexUnavailable(StorageError):
    """The face index cannot be opened: corrupt, foreign or of another version."""


class IndexOutdated(IndexUnavailable):
    """The face index was made by an earlier facecluster: opening it for writing upgrades it."""
