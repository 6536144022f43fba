"""The package's shape: what importing it does, which module may import which, and no cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "facecluster"
ALLOWED = {
    "errors": set(),
    "version": set(),
    "types": {"errors"},
    "grouping": {"errors"},
    "inference": {"errors", "types", "version"},
    "storage": {"errors", "types"},
    "pipeline": {"errors", "types", "grouping", "inference", "storage"},
    "outputs": {"types", "pipeline"},
    "api": {"types", "grouping", "inference"},
    "library": {"errors", "types", "grouping", "storage", "pipeline", "outputs", "inference"},
    "evaluation": {"errors", "types", "inference", "pipeline", "library"},
    "review": {"errors", "types", "storage", "outputs", "library"},
    "cli": {"errors", "grouping", "inference", "pipeline", "outputs", "library", "api", "evaluation", "review"},
}
"""Which parts of the package each part may import: data flows from files to outputs, never back."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """facecluster module -> the facecluster modules it imports (anywhere in the file)."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("facecluster"):
                candidates = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
                found.add(next(c for c in candidates if c in modules))
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name in modules}
        graph[name] = found - {name}
    return graph


def part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_no_module_imports_itself_in_a_cycle():
    graph = imports()
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1 and target != "facecluster":
                pytest.fail("import cycle: " + " -> ".join([*trail, module, target]))
            if target not in state:
                visit(target, [*trail, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_each_part_imports_only_the_parts_before_it():
    wrong = []
    for module, targets in imports().items():
        source = part(module)
        if source not in ALLOWED:
            continue
        for target in targets:
            if part(target) not in ALLOWED[source] | {source, ""}:
                wrong.append(f"{module} imports {target}")
            if target == "facecluster" and source != "cli":
                wrong.append(f"{module} imports the package root")
    assert not wrong, "\n".join(wrong)


def test_importing_the_package_loads_no_model_no_web_server_and_changes_no_global_state():
    check = """
import logging, sys
from PIL import Image
Image.init()
before = (Image.MAX_IMAGE_PIXELS, sorted(Image.OPEN), sorted(Image.registered_extensions()))
loggers = {name: logging.getLogger(name).level for name in ("", "exifread", "PIL")}
handlers = list(logging.getLogger().handlers)
import facecluster, facecluster.cli
assert "onnxruntime" not in sys.modules, "onnxruntime was imported"
assert "flask" not in sys.modules and "waitress" not in sys.modules, "the review app's web stack was imported"
assert (Image.MAX_IMAGE_PIXELS, sorted(Image.OPEN), sorted(Image.registered_extensions())) == before, "Pillow"
assert {name: logging.getLogger(name).level for name in loggers} == loggers, "logging levels"
assert logging.getLogger().handlers == handlers, "logging handlers"
print("clean")
"""
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0 and result.stdout.strip() == "clean", result.stderr


def test_decoding_and_cropping_ignore_a_strict_host_limit_and_leave_it_as_it_was(tmp_path):
    import warnings

    import numpy as np
    from PIL import Image

    from facecluster.inference.aligner import align_face
    from facecluster.inference.analyzer import face_thumbnail
    from facecluster.inference.images import load_image

    path = tmp_path / "large.tif"  # TIFF checks Pillow's limit again while loading
    Image.new("RGB", (400, 300), (1, 2, 3)).save(path)
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 1000  # a host application's strict limit: 120,000 pixels are "a bomb"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            loaded = load_image(path)
            assert loaded.rgb.shape == (300, 400, 3)
            for pixels in (loaded.pixels, loaded.rgb):  # as decoded, and as an array
                assert len(face_thumbnail(pixels, np.array([-50.0, -40.0, 390.0, 330.0]))) > 0  # beyond the edges
                landmarks = np.array([[60.0, 80.0], [340.0, 80.0], [200.0, 160.0], [90.0, 250.0], [310.0, 250.0]])
                assert align_face(pixels, landmarks).shape == (150, 150, 3)  # large face: reduced from a crop
        assert Image.MAX_IMAGE_PIXELS == 1000
    finally:
        Image.MAX_IMAGE_PIXELS = before


def test_a_thumbnail_crop_is_black_beyond_the_photo():
    import numpy as np
    from PIL import Image

    from facecluster.inference.images import crop_region

    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    for pixels in (rgb, Image.fromarray(rgb)):
        crop = np.asarray(crop_region(pixels, (-1, 2, 3, 6)))
        assert crop.shape == (4, 4, 3)
        assert (crop[:2, 1:] == rgb[2:4, 0:3]).all() and not crop[:, 0].any() and not crop[2:].any()
