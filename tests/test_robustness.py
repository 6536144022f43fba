"""Hostile names, vanishing files, deep trees, a full disk and a hostile person name in Chromium."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from facecluster.cli import main
from tests.conftest import EXAMPLES

HOSTILE_NAMES = [
    "with spaces and 'quotes' \"double\".jpg",
    "new\nline.jpg",
    "<img src=x onerror=alert(1)>.jpg",
    "\u202eevil-rtl\u202c.jpg",
]


def run(*args: object):
    return CliRunner().invoke(main, [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args])


def snapshot(folder: Path) -> dict[str, str]:
    return {
        os.fsdecode(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_hostile_names_non_utf8_and_deep_trees_are_scanned(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    sources = [*sorted(EXAMPLES.glob("Colin_Powell_*.jpg")), EXAMPLES / "Serena_Williams_0001.jpg"]
    for name, source in zip(HOSTILE_NAMES, sources, strict=True):
        shutil.copy2(source, photos / name)
    raw = os.fsencode(photos) + b"/latin1-\xe9t\xe9.jpg"
    shutil.copy2(EXAMPLES / "George_W_Bush_0001.jpg", raw)
    deep = photos.joinpath(*[f"d{n}" for n in range(60)])
    deep.mkdir(parents=True)
    shutil.copy2(EXAMPLES / "George_W_Bush_0002.jpg", deep / "deep.jpg")
    result = run("scan", photos, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["files"] == 6 and summary["skipped"] == 0 and summary["photos"] == 6
    report = (out / "report.html").read_text()
    assert "<img src=x" not in report and "&lt;img src=x onerror=alert(1)&gt;.jpg" in report
    linked = {p.name for p in (out / "people").rglob("*") if p.is_symlink()}
    assert "<img src=x onerror=alert(1)>.jpg" in linked and "deep.jpg" in linked


def test_files_and_folders_that_change_during_the_scan_are_skipped_with_a_reason(tmp_path, monkeypatch):
    import facecluster.pipeline.plan as plan_module

    photos, out = tmp_path / "photos", tmp_path / "out"
    (photos / "trip").mkdir(parents=True)
    for name in ("Colin_Powell_0001.jpg", "Colin_Powell_0002.jpg"):
        shutil.copy2(EXAMPLES / name, photos / name)
    shutil.copy2(EXAMPLES / "George_W_Bush_0001.jpg", photos / "trip" / "bush.jpg")
    walk = plan_module.walk_photos

    def walk_then_change(*args, **kwargs):
        found = list(walk(*args, **kwargs))
        (photos / "Colin_Powell_0002.jpg").unlink()
        shutil.rmtree(photos / "trip")
        (photos / "trip").write_text("a folder replaced by a file")
        return iter(found)

    monkeypatch.setattr(plan_module, "walk_photos", walk_then_change)
    result = run("scan", photos, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    skipped = {s["path"]: s["reason"] for s in json.loads((out / "people.json").read_text())["skipped"]}
    assert set(skipped) == {"Colin_Powell_0002.jpg", "trip/bush.jpg"}
    assert skipped["Colin_Powell_0002.jpg"] == "file vanished during the scan"
    assert skipped["trip/bush.jpg"].startswith("cannot read file")


def test_a_full_disk_fails_clearly_and_keeps_the_previous_outputs(tmp_path, monkeypatch):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for name in ("Colin_Powell_0001.jpg", "Colin_Powell_0002.jpg"):
        shutil.copy2(EXAMPLES / name, photos / name)
    assert run("scan", photos, "-o", out, "-q").exit_code == 0
    before = snapshot(out)
    shutil.copy2(EXAMPLES / "Colin_Powell_0003.jpg", photos / "Colin_Powell_0003.jpg")

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    albums_before = sorted(os.fsdecode(p.relative_to(out)) for p in (out / "people").rglob("*"))
    monkeypatch.setattr(os, "symlink", full)  # the disk fills up while the albums are rebuilt
    result = run("scan", photos, "-o", out, "-q")
    assert result.exit_code == 4 and "No space left on device" in result.stderr and "Traceback" not in result.stderr
    after = snapshot(out)
    assert after["people.json"] == before["people.json"] and after["report.html"] == before["report.html"]
    assert sorted(os.fsdecode(p.relative_to(out)) for p in (out / "people").rglob("*")) == albums_before
    assert not [p for p in out.iterdir() if p.name.startswith(".people-")]
    monkeypatch.undo()
    result = run("scan", photos, "-o", out, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout.splitlines()[-1])["faces"] == 3


def test_a_hostile_person_name_runs_no_script_in_chromium(tmp_path):
    from tests.test_outputs import CHROMIUM, TagCollector, chromium_render

    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for name in ("Colin_Powell_0001.jpg", "Colin_Powell_0002.jpg"):
        shutil.copy2(EXAMPLES / name, photos / name)
    assert run("scan", photos, "-o", out, "-q").exit_code == 0
    hostile = "</script><script>document.title='pwned'</script><img src=x onerror=alert(1)>"
    assert run("name", "p1", hostile, "-o", out).exit_code == 0
    dom = chromium_render(out / "report.html", tmp_path / "profile")
    assert "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    elements = TagCollector()
    elements.feed(dom)
    assert not any(tag == "script" or any(a.startswith("on") for a in attrs) for tag, attrs in elements.seen)
    assert "&lt;/script&gt;&lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in dom


def test_an_unreadable_photo_is_skipped_as_permission_denied(tmp_path, monkeypatch):
    import facecluster.pipeline.ingest as ingest_module

    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for name in ("Colin_Powell_0001.jpg", "Colin_Powell_0002.jpg"):
        shutil.copy2(EXAMPLES / name, photos / name)
    real = ingest_module.read_file

    def guarded(path):
        if Path(path).name == "Colin_Powell_0002.jpg":  # root reads through chmod 000, so deny here
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(ingest_module, "read_file", guarded)
    result = run("scan", photos, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    skipped = json.loads((out / "people.json").read_text())["skipped"]
    assert skipped == [{"path": "Colin_Powell_0002.jpg", "reason": "permission denied"}]


def test_a_read_only_output_folder_is_a_clear_error(tmp_path, monkeypatch):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    shutil.copy2(EXAMPLES / "Colin_Powell_0001.jpg", photos / "a.jpg")
    real_open = open

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(out)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only)
    result = run("scan", photos, "-o", out)
    assert result.exit_code == 4 and "Read-only file system" in result.stderr and "Traceback" not in result.stderr


def test_a_read_only_photo_tree_is_never_written(tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    (photos / "album").mkdir(parents=True)
    for name in ("Colin_Powell_0001.jpg", "Colin_Powell_0002.jpg", "George_W_Bush_0001.jpg"):
        shutil.copy2(EXAMPLES / name, photos / "album" / name)

    def state() -> dict[str, tuple[str, int, int]]:
        return {
            os.fsdecode(p.relative_to(photos)): (
                hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "",
                p.stat().st_mtime_ns,
                p.stat().st_mode,
            )
            for p in sorted(photos.rglob("*"))
        }

    for path in [*photos.rglob("*"), photos]:
        path.chmod(0o444 if path.is_file() else 0o555)
    before = state()
    try:
        assert run("scan", photos, "-o", out, "-q").exit_code == 0
        assert run("name", "p1", "Colin", "-o", out).exit_code == 0
        assert run("scan", photos, "-o", out, "-q", "--xmp").exit_code == 0
        assert state() == before
    finally:
        for path in [photos, *photos.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.skipif(os.name == "nt", reason="pauses the first scan with SIGSTOP")
def test_two_scans_at_once_the_second_refuses_and_nothing_breaks(tmp_path):
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    from PIL import Image

    from facecluster.storage.lock import OutputLock

    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for quality in (60, 70, 80, 90):
        for photo in EXAMPLES.glob("*.jpg"):
            Image.open(photo).save(photos / f"{photo.stem}_q{quality}.jpg", quality=quality)
    command = [sys.executable, "-m", "facecluster", "scan", str(photos), "-o", str(out), "--quiet"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "index.sqlite").exists():
        time.sleep(0.05)
    # Paused while it holds the lock, the first scan cannot finish before the second tries (as a
    # quick machine once let it do).
    os.kill(first.pid, signal.SIGSTOP)
    try:
        assert first.poll() is None and OutputLock.busy(out)
        second = run("scan", photos, "-o", out, "-q")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=120) == 0
    assert second.exit_code == 3 and "another facecluster command" in second.stderr
    with sqlite3.connect(out / "index.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 40
