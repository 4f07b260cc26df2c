"""The CLI boundary as a property (tests/cli_property.py), and the in-process harness it uses
checked against real scripts/run.py processes.

make test tries CONVSCOPE_PROPERTY_EXAMPLES (default 25) command lines; `pytest -m slow` tries
500. A failure prints the command line Hypothesis shrank it to.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli_harness import run_in_process
from tests.helpers import REPO, run_script

FAST_EXAMPLES = 25
SLOW_EXAMPLES = 500


def _property_run(examples: int, timeout: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONVSCOPE_PROPERTY_EXAMPLES": os.environ.get(
        "CONVSCOPE_PROPERTY_EXAMPLES", str(examples))}
    env.pop("CONVSCOPE_PROPERTY_RECORD", None)
    return subprocess.run([sys.executable, "-m", "tests.cli_property"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_every_command_line_ends_in_exit_0_or_one_error_line():
    result = _property_run(FAST_EXAMPLES, timeout=240)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "every one exit 0 or one error line" in result.stdout


@pytest.mark.slow
def test_every_command_line_ends_in_exit_0_or_one_error_line_long():
    result = _property_run(SLOW_EXAMPLES, timeout=3600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def _error_line(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


PARITY = [
    ["plots.width_inches=nan"],  # a value check (config.checks)
    ["data=null"],  # a config group set to nothing: Hydra's ValueError, worded by convscope.cli
    ["limits.memory_gb=1e308"],  # beyond a 64-bit count of bytes
]
MORE_PARITY = [
    ["model.layers.7.stride=2"],  # Hydra's composition, worded by convscope.cli
    ["+model.layers.0.foo=1"],
    ["seed=1180591620717411303424"],
    ["data.start=5", "data.end=4"],
    ["model.layers.0.kernel_size=abc"],
    ["stream.threads=100000"],
    ["model.layers=[{type:Conv1d,out_channels:1,kernel_size:3,padding:20000,"
     "padding_mode:circular}]"],
]


def _same_answer(tmp_path, args: list[str]) -> None:
    real = run_script("run.py", *args, f"hydra.run.dir={tmp_path / 'real'}")
    harness = run_in_process([*args, f"hydra.run.dir={tmp_path / 'harness'}"])
    assert (real.returncode, _error_line(real.stderr)) == (harness.code,
                                                           _error_line(harness.stderr))
    assert real.returncode == 2 and len(_error_line(real.stderr)) == 1, real.stderr


@pytest.mark.parametrize("args", PARITY, ids=" ".join)
def test_harness_answers_as_the_cli_does(tmp_path, args):
    _same_answer(tmp_path, args)


@pytest.mark.slow
@pytest.mark.parametrize("args", MORE_PARITY, ids=" ".join)
def test_harness_answers_as_the_cli_does_more(tmp_path, args):
    _same_answer(tmp_path, args)
