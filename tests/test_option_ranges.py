"""Numeric options and arguments have a documented range: NaN, infinities and values outside it are refused."""

from __future__ import annotations

import json
import math

import click
import numpy as np
import pytest
from click.testing import CliRunner

import facecluster
from facecluster.cli import main
from facecluster.cli.common import FiniteRange
from facecluster.errors import InvalidInput
from facecluster.grouping import GroupingOptions
from facecluster.inference.runtime import open_session
from tests.conftest import EXAMPLES

BUSH_1, BUSH_2 = EXAMPLES / "George_W_Bush_0001.jpg", EXAMPLES / "George_W_Bush_0002.jpg"
OUT_OF_RANGE = ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e308", "-1", "-0.001", "2.0000001", "1e999", "x"]
BAD_NUMBERS = [math.nan, math.inf, -math.inf, 1e308, -1.0, 2.5, "0.3"]


def run(*args: object) -> click.testing.Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def numeric_options(command: click.Command, prefix: str = "") -> list[tuple[str, click.Parameter]]:
    """Every parameter of ``command`` (and its subcommands) that takes a number."""
    found = [
        (f"{prefix}{command.name} {param.name}", param)
        for param in command.params
        if isinstance(param.type, click.types._NumberParamTypeBase)
    ]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            found += numeric_options(sub, f"{prefix}{command.name} ")
    return found


def test_every_numeric_option_has_a_range():
    options = numeric_options(main)
    assert {name for name, _ in options} >= {
        "main verify threshold",
        "main scan threshold",
        "main eval cluster threshold",
    }
    for name, param in options:
        kind = param.type
        assert isinstance(kind, click.IntRange | FiniteRange), f"{name}: {kind!r} has no range or accepts NaN"
        assert kind.min is not None and kind.max is not None, f"{name}: {kind!r} is open"


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize(
    "command",
    [
        ["verify", BUSH_1, BUSH_2, "--json"],
        ["scan", EXAMPLES, "--json", "-o"],
        ["eval", "cluster", EXAMPLES, "--json", "-o"],
    ],
    ids=["verify", "scan", "eval-cluster"],
)
def test_threshold_outside_0_to_2_is_a_usage_error(tmp_path, command, value):
    args = [*command, tmp_path / "out"] if command[-1] == "-o" else command
    result = run(*args, "--threshold", value)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)  # no traceback
    assert "Invalid value for '--threshold'" in result.output
    assert "from 0 to 2" in result.output or "range 0.0<=x<=2.0" in result.output or "valid number" in result.output
    assert not result.stdout.lstrip().startswith("{")  # nothing printed as if it had run
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("value", ["0", "-1", "2147483648", "100000000000000000000000", "1.5", "x"])
def test_history_limit_outside_its_range_is_a_usage_error(tmp_path, value):
    result = run("history", "-o", tmp_path, "--limit", value)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "Invalid value for '--limit'" in result.output


@pytest.mark.parametrize("value, same", [("0", False), ("2", True), ("0.42", True)])
def test_thresholds_in_range_still_work_and_print_as_valid_json(value, same):
    result = run("verify", BUSH_1, BUSH_2, "--json", "--threshold", value)
    assert result.exit_code == (0 if same else 1), result.output
    data = json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert data["threshold"] == float(value) and data["same"] is same


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_grouping_options_refuse_a_bad_threshold(value):
    with pytest.raises(InvalidInput, match="from 0 to 2"):
        GroupingOptions("adaptive", value)
    with pytest.raises(InvalidInput, match="from 0 to 2"):
        facecluster.group(np.eye(3, dtype=np.float32), threshold=value)


def test_grouping_options_refuse_an_unknown_method():
    with pytest.raises(InvalidInput, match="unknown grouping method"):
        GroupingOptions("kmeans")


def test_grouping_thresholds_are_kept_as_plain_floats():
    options = GroupingOptions("agglomerative", np.float32(0.5))
    assert type(options.threshold) is float
    assert GroupingOptions.from_meta(**options.as_meta()) == options


def test_an_index_holding_a_nan_threshold_falls_back_to_the_default():
    assert GroupingOptions.from_meta("hdbscan", "nan") == GroupingOptions("hdbscan")


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_verify_refuses_a_bad_threshold(value):
    a, b = np.eye(2, 128, dtype=np.float32)
    with pytest.raises(InvalidInput, match="from 0 to 2"):
        facecluster.verify(a, b, value)
    assert facecluster.verify(a, b, 2.0).same and not facecluster.verify(a, b, 0.0).same


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1e9", "4.5"])
def test_a_bad_thread_count_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("FACECLUSTER_THREADS", value)
    with pytest.raises(InvalidInput, match="FACECLUSTER_THREADS must be a whole number from 1 to 1024"):
        open_session("retinaface_mnet025.onnx", "cpu")
    result = run("faces", BUSH_1, "--device", "cpu")
    assert result.exit_code == 2 and "FACECLUSTER_THREADS" in result.output
