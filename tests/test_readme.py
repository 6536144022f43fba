"""The README's library example runs as written, on the example photos."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES, ROOT


def library_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return next(block for block in blocks if "Library.create" in block)


def test_the_readme_library_example_runs(tmp_path: Path):
    (tmp_path / "examples").symlink_to(EXAMPLES.parent, target_is_directory=True)
    result = subprocess.run(
        [sys.executable, "-c", library_example()], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("3 people, 16 faces, ran on")
    assert [line.split(" ")[1:4:2] for line in lines[1:4]] == [["None", "3"]] * 3  # unnamed, 3 faces each
    assert "'Colin_Powell_0001.jpg', 'Colin_Powell_0002.jpg', 'Colin_Powell_0003.jpg'" in lines[1]
    assert lines[4] == "Colin Powell"
    assert lines[5].startswith("examples/photos/Colin_Powell_0002.jpg face 1 [") and lines[5].endswith("True")
    assert " Colin Powell " in lines[5]
    assert lines[6].startswith('["named p') and "'Colin Powell' (3 faces" in lines[6]
    assert all(re.fullmatch(r"p\d+-[pf]\d+ p\d+ [pf]\d+ \d+%", line) for line in lines[7:10])  # questions
    assert not (tmp_path / "facecluster-output" / "people" / "Colin Powell").exists()  # undone
    assert (tmp_path / "facecluster-output" / "people" / "person_0001").is_dir()
