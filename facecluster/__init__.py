"""facecluster: find, recognise and group the faces in a photo library, offline.

The library API (the command line is a thin layer over it):

- ``analyze``, ``verify``, ``group``: verbs on photos and arrays (``facecluster.api``);
- ``Library``: a photo folder and its output folder: ``scan``, ``people``, ``corrections``, ``find``;
- the vocabulary (``Face``, ``Photo``, ``Person``, ``Match``, ``ScanStats`` ...) and one error
  hierarchy under ``FaceclusterError``.

Importing the package loads no model and changes no global state of Pillow or logging; the models
load on first use.
"""

from facecluster.api import SAME_PERSON_THRESHOLD, analyze, group, main_face, verify
from facecluster.errors import (
    ClusterError,
    ClusterLost,
    CorrectionsNotSupported,
    DeviceError,
    FaceclusterError,
    ImageLoadError,
    IndexUnavailable,
    InvalidInput,
    LabelError,
    NoLibrary,
    OutputBusy,
    PeopleError,
    StorageError,
)
from facecluster.grouping import GroupingOptions
from facecluster.inference.analyzer import FaceAnalyzer
from facecluster.library import Library, PeopleEditor
from facecluster.pipeline.ingest import Progress
from facecluster.pipeline.plan import ScanOptions, ScanPlan
from facecluster.types import (
    AnalysisResult,
    Face,
    FaceQuality,
    FaceRecord,
    FindResult,
    Match,
    Person,
    Photo,
    Question,
    QuestionSide,
    ScanOutcome,
    ScanStats,
    SkippedFile,
    Verification,
)
from facecluster.version import __version__

__all__ = [
    "SAME_PERSON_THRESHOLD",
    "AnalysisResult",
    "ClusterError",
    "ClusterLost",
    "CorrectionsNotSupported",
    "DeviceError",
    "Face",
    "FaceAnalyzer",
    "FaceQuality",
    "FaceRecord",
    "FaceclusterError",
    "FindResult",
    "GroupingOptions",
    "ImageLoadError",
    "IndexUnavailable",
    "InvalidInput",
    "LabelError",
    "Library",
    "Match",
    "NoLibrary",
    "OutputBusy",
    "PeopleEditor",
    "PeopleError",
    "Person",
    "Photo",
    "Progress",
    "Question",
    "QuestionSide",
    "ScanOptions",
    "ScanOutcome",
    "ScanPlan",
    "ScanStats",
    "SkippedFile",
    "StorageError",
    "Verification",
    "__version__",
    "analyze",
    "group",
    "main_face",
    "verify",
]
