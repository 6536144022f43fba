"""facecluster: find, recognise and group the faces in a photo library, offline."""

from facecluster.analysis import AnalysisResult, Face, FaceAnalyzer, analyze
from facecluster.images import ImageLoadError
from facecluster.verify import SAME_PERSON_THRESHOLD, Verification, verify

__version__ = "0.1.0"

__all__ = [
    "SAME_PERSON_THRESHOLD",
    "AnalysisResult",
    "Face",
    "FaceAnalyzer",
    "ImageLoadError",
    "Verification",
    "__version__",
    "analyze",
    "verify",
]
