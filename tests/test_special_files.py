"""FIFOs, devices and other non-regular files are refused without blocking wherever a photo path is opened."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import facecluster
from facecluster.cli import main
from facecluster.errors import ImageLoadError
from facecluster.inference import images
from facecluster.inference.images import NotRegularFile, load_image, open_regular
from facecluster.pipeline.ingest import read_file
from tests.conftest import EXAMPLES
from tests.fakes import FakeAnalyzer, write_photo

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="this platform has no FIFOs")

BUSH = EXAMPLES / "George_W_Bush_0001.jpg"
SECONDS = 20


@pytest.fixture()
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.jpg"
    os.mkfifo(path)
    return path


def promptly(call: Callable[[], Any], fifo: Path) -> Any:
    """``call()``'s result or exception; fails (after unblocking it) if it is still waiting after SECONDS."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(SECONDS)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # a writer comes and goes: the reader sees EOF
        thread.join(SECONDS)
        pytest.fail(f"blocked on the FIFO {fifo} for {SECONDS} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def test_load_image_refuses_a_fifo(fifo: Path) -> None:
    with pytest.raises(ImageLoadError, match=r"not a regular file \(a named pipe\)"):
        promptly(lambda: load_image(fifo), fifo)
    with pytest.raises(ImageLoadError, match="not a regular file"):
        promptly(lambda: load_image(str(fifo)), fifo)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_load_image_refuses_a_device() -> None:
    with pytest.raises(ImageLoadError, match=r"not a regular file \(a character device\)"):
        load_image("/dev/zero")


def test_a_directory_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match=r"not a regular file \(a directory\)"):
        load_image(tmp_path)


def test_a_fifo_swapped_in_after_the_check_is_refused_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "photo.jpg"
    shutil.copy(BUSH, path)
    real_stat, swapped = os.stat, []

    def stat_then_swap(target: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        facts = real_stat(target, *args, **kwargs)
        if Path(target) == path and not swapped:
            swapped.append(path)
            path.unlink()
            os.mkfifo(path)
        return facts

    monkeypatch.setattr(images.os, "stat", stat_then_swap)
    with pytest.raises(NotRegularFile, match="named pipe"):
        promptly(lambda: open_regular(path), path)
    assert swapped


def test_the_api_refuses_a_fifo(fifo: Path) -> None:
    with pytest.raises(ImageLoadError, match="not a regular file"):
        promptly(lambda: facecluster.analyze(fifo), fifo)


def test_the_scans_file_reading_refuses_a_fifo(fifo: Path) -> None:
    with pytest.raises(OSError, match="not a regular file"):
        promptly(lambda: read_file(fifo), fifo)


def test_a_photo_replaced_by_a_fifo_during_a_scan_is_skipped(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "a.png", [1])
    victim = write_photo(photos / "b.png", [1], variant=1)

    def swap_then_load(
        device: str, workers: int | None
    ) -> FakeAnalyzer:  # called after the folder was listed, before reading
        victim.unlink()
        os.mkfifo(victim)
        return FakeAnalyzer()

    library = facecluster.Library.create(photos, tmp_path / "out", load_analyzer=swap_then_load)
    outcome = promptly(library.scan, victim)
    assert [(item.relative, item.reason) for item in outcome.skipped] == [
        ("b.png", "cannot read file: not a regular file (a named pipe)")
    ]


def test_faces_command_reports_a_fifo_and_goes_on(fifo: Path) -> None:
    result = promptly(lambda: CliRunner().invoke(main, ["faces", str(fifo), str(BUSH), "--device", "cpu"]), fifo)
    assert result.exit_code == 2, result.output
    assert f"error: {fifo}: not a regular file (a named pipe)" in result.output
    assert sum(line.startswith("{") for line in result.output.splitlines()) == 1


@pytest.mark.parametrize("position", [0, 1])
def test_verify_command_refuses_a_fifo(fifo: Path, position: int) -> None:
    paths = [str(BUSH), str(BUSH)]
    paths[position] = str(fifo)
    result = promptly(lambda: CliRunner().invoke(main, ["verify", *paths, "--json", "--device", "cpu"]), fifo)
    assert result.exit_code == 2, result.output
    assert "not a regular file" in result.output
