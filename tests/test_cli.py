import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from facecluster.cli import main
from tests.conftest import EXAMPLES

BUSH_1, BUSH_2 = EXAMPLES / "George_W_Bush_0001.jpg", EXAMPLES / "George_W_Bush_0002.jpg"
POWELL = EXAMPLES / "Colin_Powell_0001.jpg"


@pytest.fixture()
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(main, [str(a) for a in args])


def test_verify_same_person_exits_zero(run):
    result = run("verify", BUSH_1, BUSH_2, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("same person")


def test_verify_different_people_exits_one(run):
    result = run("verify", BUSH_1, POWELL, "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["same"] is False and data["distance"] > data["threshold"]
    assert data["faces"] == [1, 1] and data["device"] in ("CPU", "GPU (CUDA)")


def test_verify_threshold_option_changes_the_decision(run):
    assert run("verify", BUSH_1, POWELL, "--threshold", "2.0").exit_code == 0


@pytest.mark.parametrize("content", [b"", b"plain text, not a picture"])
def test_verify_unreadable_file_exits_two(run, tmp_path, content):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(content)
    result = run("verify", bad, BUSH_1, "--json")
    assert result.exit_code == 2
    assert "not an image" in json.loads(result.output.splitlines()[0])["error"]


def test_verify_photo_without_face_exits_two(run, tmp_path):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((200, 300, 3), 200, np.uint8)).save(blank)
    result = run("verify", BUSH_1, blank)
    assert result.exit_code == 2
    assert "no face found" in result.output


def test_verify_missing_file_exits_two(run, tmp_path):
    assert run("verify", tmp_path / "absent.jpg", BUSH_1).exit_code == 2


def test_faces_prints_one_json_line_per_face(run):
    result = run("faces", BUSH_1, EXAMPLES / "group_2007_007763.jpg", "--embedding")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert [line["file"] for line in lines].count(str(BUSH_1)) == 1
    assert len(lines) == 8
    first = lines[0]
    assert len(first["box"]) == 4 and len(first["landmarks"]) == 5 and len(first["embedding"]) == 128
    assert 0 < first["score"] <= 1 and first["quality"]["sharpness"] > 0


def test_faces_reports_bad_files_and_goes_on(run, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    result = run("faces", bad, BUSH_1)
    assert result.exit_code == 2
    assert sum(line.startswith("{") for line in result.output.splitlines()) == 1
    assert "broken.png" in result.output


def test_cuda_request_without_cuda_fails_loudly(run):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA")
    result = run("verify", BUSH_1, BUSH_2, "--device", "cuda")
    assert result.exit_code == 2
    assert "CUDA was requested" in result.output


def test_library_errors_map_to_documented_exit_codes():
    from facecluster import errors
    from facecluster.cli.common import exit_code

    expected = {
        errors.InvalidInput: 2,
        errors.ImageLoadError: 2,
        errors.DeviceError: 2,
        errors.PeopleError: 2,
        errors.NoLibrary: 2,
        errors.CorrectionsNotSupported: 2,
        errors.LabelError: 2,
        errors.OutputBusy: 3,
        errors.StorageError: 4,
        errors.IndexUnavailable: 4,
        errors.FaceclusterError: 2,
    }
    assert {kind: exit_code(kind("x")) for kind in expected} == expected
