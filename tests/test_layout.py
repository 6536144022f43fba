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
    "types": {"errors"},
    "grouping": {"errors"},
    "inference": {"errors", "types"},
    "storage": {"errors", "types"},
    "pipeline": {"errors", "types", "grouping", "inference", "storage"},
    "outputs": {"types", "pipeline"},
    "api": {"types", "grouping", "inference"},
    "library": {"errors", "types", "grouping", "storage", "pipeline", "outputs", "inference"},
    "evaluation": {"errors", "types", "inference", "pipeline", "library"},
    "cli": {"errors", "grouping", "inference", "pipeline", "outputs", "library", "api", "evaluation"},
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


def test_importing_the_package_loads_no_model_and_changes_no_global_state():
    check = """
import logging, sys
from PIL import Image
Image.init()
before = (Image.MAX_IMAGE_PIXELS, sorted(Image.OPEN), sorted(Image.registered_extensions()))
loggers = {name: logging.getLogger(name).level for name in ("", "exifread", "PIL")}
handlers = list(logging.getLogger().handlers)
import facecluster, facecluster.cli
assert "onnxruntime" not in sys.modules, "onnxruntime was imported"
assert (Image.MAX_IMAGE_PIXELS, sorted(Image.OPEN), sorted(Image.registered_extensions())) == before, "Pillow"
assert {name: logging.getLogger(name).level for name in loggers} == loggers, "logging levels"
assert logging.getLogger().handlers == handlers, "logging handlers"
print("clean")
"""
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0 and result.stdout.strip() == "clean", result.stderr


def test_decoding_leaves_pillows_limit_as_the_host_set_it(tmp_path):
    from PIL import Image

    from facecluster.inference.images import load_image

    path = tmp_path / "small.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 12345
    try:
        assert load_image(path).rgb.shape == (8, 8, 3)
        assert Image.MAX_IMAGE_PIXELS == 12345
    finally:
        Image.MAX_IMAGE_PIXELS = before
