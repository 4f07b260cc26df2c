"""scripts/explain.py end to end, as a user runs it (subprocess; each run costs a few seconds)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

REPO = Path(__file__).resolve().parents[1]


def explain(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/explain.py", f"hydra.run.dir={tmp_path}",
                           *overrides], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_no_arguments_checks_every_example(tmp_path):
    result = explain(tmp_path)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"(\d+)/(\d+) examples match", last)
    assert match and match.group(1) == match.group(2) and int(match.group(2)) >= 20, last
    assert "✗" not in result.stdout
    assert "tconv2d_model" in result.stdout and "(32, 64, 4, 4)" in result.stdout


def test_one_example_step_by_step_with_picture(tmp_path):
    result = explain(tmp_path, "example=tconv1d_stride")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for section in ("1. Scatter", "x[3]=1 × w", "2. Zero insertion", "[0, 1, 0, 1, 0, 1, 0, 1, 0]",
                    "flip the kernel", "3. Matrix", "C^T", "4. All agree: yes ✓",
                    "5. The tutorials' shortcut"):
        assert section in out, section
    picture = tmp_path / "scatter.png"
    assert f"picture: {picture}" in out
    image = matplotlib.image.imread(picture)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert not list(tmp_path.glob(".*.tmp"))
    assert not list(tmp_path.glob(".*partial*"))  # convscope.atomic's temp name


def test_custom_input_says_where_the_shortcut_breaks(tmp_path):
    result = explain(tmp_path, "input=[1,2,3]", "weight=[1,0,-1]", "stride=2", "padding=1",
                     "output_padding=1")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "torch        [0, 1, 0, 1, 0, -3]" in out
    assert "It gives [0, -1, 0, -1, 0], but y = [0, 1, 0, 1, 0, -3] ✗" in out
    assert "is not symmetric" in out and "output_padding=1: the exact output" in out
    assert (tmp_path / "scatter.png").stat().st_size > 0


def test_bad_input_is_one_error_line_and_exit_2(tmp_path):
    result = explain(tmp_path, "input=[1,2,3]", "weight=[1,0,-1]", "stride=2", "output_padding=2")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "output_padding=2" in lines[0] and "stride=2" in lines[0]
    assert not (tmp_path / "scatter.png").exists()


def test_two_input_channels_walk_through_the_scatter_per_channel(tmp_path):
    result = explain(tmp_path, "input=[[1,2],[3,4]]", "weight=[[1,0,-1],[1,1,1]]", "bias=0.5")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ConvTranspose1d(2, 1, kernel_size=3)" in out and "weight (2, 1, 3)" in out
    assert "x[1,0]=3 × w[1,0]" in out and "sum + b[0]" in out
    assert "torch        [4.5, 9.5, 6.5, 2.5]" in out  # [4, 9, 6, 2] from the two channels, + b
    assert "Shown for one input and one output channel only" in out
    assert (tmp_path / "scatter.png").stat().st_size > 0


@pytest.mark.parametrize("overrides, words", [
    (["input=[[1,2],[3]]", "weight=[1]"], "input is ragged"),
    (["input=[[[1,2]]]", "weight=[1]"], "input has shape (1, 1, 2)"),
    (["input=[[],[]]", "weight=[1]"], "input[0] is empty"),
    (["input=[[1,2],[3,4]]", "weight=[1,0,-1]"], "weight has shape (3,) = (k)"),
    (["input=[[1,2],[3,4]]", "weight=[[[1,2]]]"], "(C_in, C_out, k)"),
    (["input=[1,2]", "weight=[1,1]", "bias=[1,2]"], "bias has shape (2,)"),
    (["input=[1,x]", "weight=[1]"], "input[1] must be a number"),
    (["input=5", "weight=[1]"], "input"),
])
def test_bad_shapes_are_one_error_line_and_exit_2(tmp_path, overrides, words):
    result = explain(tmp_path, *overrides)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert words in lines[0]
    assert not (tmp_path / "scatter.png").exists()
