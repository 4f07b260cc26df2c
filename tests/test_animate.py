"""scripts/explain.py animate=true: the frames' arithmetic against torch, the GIF, the page, refusals.

The oracle for every frame is torch itself: frame i's running sum, cropped to y's columns, is
conv_transpose1d of the input with samples i+1.. set to zero (and no bias); the closing frame is
conv_transpose1d of the whole input, bias included.
"""

from __future__ import annotations

import io
import itertools
import subprocess
import sys

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image, ImageSequence

from convscope.errors import ConvscopeError
from convscope.explainer.animation import scatter_animation
from convscope.explainer.animation_gif import FRAME_MS, save_animation
from convscope.explainer.catalogue import find_example
from convscope.explainer.examples import TRANSPOSE1D, Layer, given
from convscope.explainer.explain import (
    ExplainConfig,
    explain,
    register_explain_schema,
    to_explain_config,
)
from convscope.explainer.picture import MAX_SAMPLES, one_channel_slice
from convscope.rundir import RunDir
from tests.helpers import REPO

# (L_in, k, stride, padding, output_padding, dilation, bias): crops on both sides, output_padding
# past the last copy (op > p), dilated taps, a padding that eats whole copies, plain stride 1
CASES = [(4, 3, 2, 1, 0, 1, False), (8, 5, 2, 2, 1, 1, False), (3, 2, 3, 0, 2, 1, True),
         (5, 3, 1, 3, 0, 2, True), (6, 4, 1, 0, 0, 1, False), (5, 2, 2, 4, 1, 1, True)]


def make_layer(k: int, stride: int, padding: int, output_padding: int, dilation: int,
               bias: bool, seed: int = 0) -> Layer:
    rng = np.random.default_rng(seed)
    return Layer(TRANSPOSE1D, given(rng.normal(size=k), (1, 1, k)),
                 given([rng.normal()], (1,)) if bias else None, stride, padding, output_padding,
                 dilation)


def torch_y(x: np.ndarray, layer: Layer, with_bias: bool = True) -> np.ndarray:
    bias = layer.bias.array() if with_bias and layer.bias is not None else None
    return torch.nn.functional.conv_transpose1d(
        torch.from_numpy(x), torch.from_numpy(layer.weight.array()),
        None if bias is None else torch.from_numpy(bias), stride=layer.stride,
        padding=layer.padding, output_padding=layer.output_padding,
        dilation=layer.dilation).numpy()[0, 0]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "L{}k{}s{}p{}op{}d{}b{}".format(*c))
def test_every_frame_is_torch_on_the_inputs_placed_so_far(case):
    length, *params = case
    layer = make_layer(*params)
    x = np.random.default_rng(1).normal(size=(1, 1, length))
    animation = scatter_animation(x, layer)
    assert len(animation.frames) == length + 1
    kept = animation.canvas.kept
    for i, frame in enumerate(animation.frames[:-1]):
        assert frame.newest == i and frame.placed == i + 1 and not frame.final
        placed = x.copy()
        placed[..., i + 1:] = 0.0
        np.testing.assert_allclose(frame.running[kept], torch_y(placed, layer, with_bias=False),
                                   atol=1e-12)
    closing = animation.frames[-1]
    assert closing.final and closing.newest is None
    np.testing.assert_allclose(animation.output, torch_y(x, layer), atol=1e-12)


def test_a_long_many_channel_input_animates_its_first_samples_of_one_channel_pair():
    """As scatter.png does: the first MAX_SAMPLES samples, input channel 0 -> output channel 0."""
    example = find_example("tconv1d_audio_demo")  # 16000 samples, 1 -> 2 channels, bias
    x, layer, note = one_channel_slice(example.input.array(), example.layer)
    animation = scatter_animation(x, layer)
    assert len(animation.frames) == MAX_SAMPLES + 1 and "first 12 of 16000" in note
    assert layer.bias is None  # the other channels' share is not drawn: no bias either
    np.testing.assert_allclose(animation.output, torch_y(x, layer), atol=1e-12)


def test_gif_has_one_frame_per_input_sample_plus_y(tmp_path):
    layer = make_layer(5, 2, 2, 1, 1, True)
    x = np.random.default_rng(2).normal(size=(1, 1, 4))
    path, animation = save_animation(layer, x, RunDir(tmp_path).animation)
    assert path == tmp_path / "scatter.gif"
    np.testing.assert_allclose(animation.output, torch_y(x, layer), atol=1e-12)
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 4 + 1
        durations, pixels = [], []
        for frame in ImageSequence.Iterator(gif):  # one object, seeking: copy as we go
            durations.append(frame.info["duration"])
            pixels.append(np.asarray(frame.convert("RGB")))
    assert 400 <= FRAME_MS <= 700 and durations[:-1] == [FRAME_MS] * 4
    assert durations[-1] > FRAME_MS  # time to read y
    assert len({p.shape for p in pixels}) == 1 and min(pixels[0].shape[:2]) > 200
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(pixels))
    assert [p.name for p in tmp_path.iterdir()] == ["scatter.gif"]  # no temp file left


def test_explain_animates_a_channel_pair_and_writes_the_page(tmp_path):
    """Two channels in: channel 0 -> 0 is animated, its closing frame is torch's, the page
    shows the GIF with its caption beside the picture and the steps."""
    register_explain_schema()
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        assert not to_explain_config(compose("explain")).animate  # off by default
        cfg = to_explain_config(compose("explain", overrides=[
            "input=[[1,2,3,4,5],[-3,0,2,1,1]]", "weight=[[1,0,-1],[2,1,0]]", "stride=2",
            "padding=1", "animate=true"]))
    out = io.StringIO()
    assert explain(cfg, tmp_path, out) == 0
    text = out.getvalue()
    assert "✓ animation's last frame = torch (6 frames: 5 input samples + y)" in text
    run_dir = RunDir(tmp_path)
    assert f"animation: {run_dir.animation}" in text and f"page: {run_dir.report}" in text
    with Image.open(run_dir.animation) as gif:
        assert gif.n_frames == 6
    page = run_dir.report.read_text(encoding="utf-8")
    assert '<img src="scatter.gif"' in page and '<img src="scatter.png"' in page
    assert "the last of the 6 frames" in page and "1. Scatter" in page


@pytest.mark.parametrize("cfg, words", [
    (ExplainConfig(example="conv1d_k3", animate=True), "example conv1d_k3 is a Conv1d"),
    (ExplainConfig(example="tconv2d_basic", animate=True), "is a ConvTranspose2d"),
    (ExplainConfig(animate=True), "add example=<name>"),
    (ExplainConfig(input=[1.0, 2.0], weight=[1.0], conv="conv1d", animate=True),
     "your conv=conv1d layer is a Conv1d"),
])
def test_what_cannot_be_animated_is_refused_before_anything_is_written(tmp_path, cfg, words):
    out = io.StringIO()
    with pytest.raises(ConvscopeError, match="animate=true") as caught:
        explain(cfg, tmp_path, out)
    assert words in str(caught.value)
    assert out.getvalue() == "" and not list(tmp_path.iterdir())


def test_the_script_refuses_with_one_error_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "scripts/explain.py", "example=conv1d_k3",
                             "animate=true", f"hydra.run.dir={tmp_path}"], cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: animate=true: example conv1d_k3")
    assert not (tmp_path / "scatter.gif").exists() and not (tmp_path / "scatter.png").exists()
