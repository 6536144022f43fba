"""ONNX Runtime sessions: pick the execution provider and report what actually runs.

onnxruntime itself is imported when the first session opens, not with this module, and with its
telemetry switched off (``_onnxruntime``): official builds otherwise record events, keep a device
id under ``~/.cache/Microsoft`` and write a session file into the temporary folder on every run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from facecluster.errors import DeviceError, InvalidInput

if TYPE_CHECKING:
    import onnxruntime as ort

DEVICES = ("auto", "cpu", "cuda")
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
MAX_THREADS = 1024
"""The most CPU threads FACECLUSTER_THREADS may ask for (a whole number from 1 to this)."""


@dataclass(frozen=True)
class Runtime:
    """Where inference runs: the device asked for and the provider actually used."""

    requested: str
    provider: str
    fallback: str = ""
    """Why CUDA is not in use although this onnxruntime offers it ('' when not applicable)."""

    @property
    def label(self) -> str:
        """Short human label: 'GPU (CUDA)' or 'CPU', with the fallback reason if any."""
        name = "GPU (CUDA)" if self.provider == _CUDA else "CPU"
        return f"{name} ({self.fallback})" if self.fallback else name


def model_path(filename: str) -> Path:
    """Path of a model file bundled in ``facecluster/models``."""
    return Path(str(resources.files("facecluster") / "models" / filename))


def cpu_threads() -> int:
    """Intra-op threads: FACECLUSTER_THREADS, else every core this process may use; InvalidInput for a bad value."""
    configured = os.environ.get("FACECLUSTER_THREADS")
    if configured:
        try:
            threads = int(configured)
        except ValueError:
            threads = 0
        if not 1 <= threads <= MAX_THREADS:
            raise InvalidInput(
                f"FACECLUSTER_THREADS must be a whole number from 1 to {MAX_THREADS}, not {configured!r}"
            )
        return threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _onnxruntime() -> ModuleType:
    """onnxruntime, imported with its telemetry off.

    ``ORT_DISABLE_TELEMETRY=1`` is set (unless the environment already says otherwise) before the
    first import, the only time onnxruntime reads it; ``disable_telemetry_events`` then also covers
    a host application that imported onnxruntime earlier.
    """
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    onnxruntime.disable_telemetry_events()
    return onnxruntime


def open_session(filename: str, device: str = "auto") -> tuple[ort.InferenceSession, Runtime]:
    """Open a bundled model on ``device`` ('auto', 'cpu' or 'cuda').

    'cuda' fails loudly when CUDA cannot be used; 'auto' uses CUDA when onnxruntime-gpu
    and a GPU are present and reports the provider that was really attached.
    """
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    ort = _onnxruntime()
    available = ort.get_available_providers()
    if device == "cuda" and _CUDA not in available:
        raise DeviceError(
            "CUDA was requested but this onnxruntime has no CUDAExecutionProvider "
            "(install onnxruntime-gpu and a matching CUDA runtime)"
        )
    providers = [_CUDA, _CPU] if device != "cpu" and _CUDA in available else [_CPU]
    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads()
    options.log_severity_level = 3
    # Several threads may run a session at once (FaceAnalyzer's workers): threads that wait for work
    # sleep instead of spinning, so they leave the cores to the others (measured: no slower alone).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(model_path(filename)), options, providers=providers)
    used = session.get_providers()[0]
    if device == "cuda" and used != _CUDA:
        raise DeviceError("CUDA was requested but onnxruntime could not initialise it; see its log")
    fallback = "CUDA provider present but could not be initialised" if _CUDA in providers and used != _CUDA else ""
    return session, Runtime(requested=device, provider=used, fallback=fallback)
