"""convscope.explain from Python: the script's text, the outputs against torch, the picture rule."""

from __future__ import annotations

import base64
import html
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convscope
from convscope.errors import ConvscopeError
from tests.helpers import REPO


def script(tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/explain.py", f"hydra.run.dir={tmp_path}",
                           *overrides], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_no_arguments_gives_the_scripts_stdout(tmp_path):
    result = convscope.explain()
    expected = script(tmp_path)
    assert expected.returncode == 0, expected.stderr
    assert str(result) == expected.stdout
    assert result.ok and result.output is None and result.picture is None
    assert "tconv1d_stride" in result.outputs and len(result.outputs) >= 20


def test_one_example_gives_the_scripts_stdout_and_picture(tmp_path):
    expected = script(tmp_path, "example=tconv1d_stride")
    assert expected.returncode == 0, expected.stderr
    result = convscope.explain("tconv1d_stride", out_dir=tmp_path)
    assert str(result) == expected.stdout
    assert result.picture == tmp_path / "scatter.png" and result.picture.stat().st_size > 0
    np.testing.assert_array_equal(result.output, [[[1, 2, 1, 2, 1, 2, 1]]])


def test_custom_arrays_and_tensors_give_the_scripts_stdout(tmp_path):
    expected = script(tmp_path, "input=[[1,2],[3,4]]", "weight=[[1,0,-1],[1,1,1]]", "bias=0.5",
                      "stride=2", "picture=false")
    assert expected.returncode == 0, expected.stderr
    result = convscope.explain(input=np.array([[1.0, 2.0], [3.0, 4.0]]),
                               weight=torch.tensor([[1, 0, -1], [1, 1, 1]]),
                               bias=torch.tensor(0.5), stride=np.int64(2))
    assert str(result) == expected.stdout


@pytest.mark.parametrize("conv", ["transpose", "conv1d"])
def test_a_layers_parameters_and_a_grad_tensor_match_torch(conv):
    torch.manual_seed(0)
    if conv == "transpose":
        layer = torch.nn.ConvTranspose1d(2, 3, 4, stride=2, padding=1, output_padding=1)
        params = dict(stride=2, padding=1, output_padding=1)
    else:
        layer = torch.nn.Conv1d(2, 3, 3, padding=1, dilation=2)
        params = dict(padding=1, dilation=2)
    x = torch.randn(2, 9, requires_grad=True)
    result = convscope.explain(input=x, weight=layer.weight, bias=layer.bias, conv=conv, **params)
    assert result.ok, result.text
    np.testing.assert_allclose(result.output, layer(x[None]).detach().numpy(), atol=1e-5)
    functional = F.conv_transpose1d if conv == "transpose" else F.conv1d
    expected = functional(x[None].double(), layer.weight.double(), layer.bias.double(), **params)
    np.testing.assert_allclose(result.output, expected.detach().numpy(), atol=1e-10)


def test_errors_are_the_scripts_error_lines(tmp_path):
    cli = script(tmp_path, "input=[[1,2],[3,4]]", "weight=[1,0,-1]")
    assert cli.returncode == 2
    with pytest.raises(ConvscopeError) as caught:
        convscope.explain(input=torch.tensor([[1.0, 2.0], [3.0, 4.0]]), weight=[1, 0, -1])
    assert cli.stderr == f"error: {caught.value}\n"


@pytest.mark.parametrize("kwargs, words", [
    (dict(example="tconv1d_basic", input=[1]), "not both"),
    (dict(stride=2), "stride=2 only applies to custom input"),
    (dict(input=[1, 2], weight=[1], stride="2"), "stride must be an int, got stride='2'"),
    (dict(input=torch.zeros(1, 2, 3), weight=[1]), "input has shape (1, 2, 3)"),
    (dict(example=3), "example must be a string"),
])
def test_bad_requests_raise_convscope_error(kwargs, words):
    with pytest.raises(ConvscopeError) as caught:
        convscope.explain(**kwargs)
    assert words in str(caught.value)


def test_picture_only_when_asked(tmp_path):
    assert convscope.explain("tconv1d_basic").picture is None
    off = convscope.explain("tconv1d_basic", out_dir=tmp_path / "off", picture=False)
    assert off.picture is None and not (tmp_path / "off").exists()
    assert "picture:" not in str(off)
    temporary = convscope.explain("tconv1d_basic", picture=True).picture
    try:
        assert temporary.name == "scatter.png" and temporary.stat().st_size > 0
    finally:
        temporary.unlink()
        temporary.parent.rmdir()


def test_html_shows_the_text_and_the_picture_inline(tmp_path):
    result = convscope.explain(input=[1, 2, 3], weight=[1, 0, -1], out_dir=tmp_path)
    page = result._repr_html_()
    assert page.startswith(f"<pre>{html.escape(result.text)}</pre>")
    data = page.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(data) == (tmp_path / "scatter.png").read_bytes()
    plain = convscope.explain("conv1d_k1")
    assert plain._repr_html_() == f"<pre>{html.escape(plain.text)}</pre>"


def test_importing_and_explaining_loads_neither_hydra_nor_matplotlib():
    code = ("import sys, convscope; r = convscope.explain('tconv1d_stride'); assert r.ok; "
            "print(sorted(m for m in ('hydra', 'omegaconf', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("kwargs, words", [
    (dict(input=[1, 2, 3], weight=[1, 1, 1], stride=10**9),
     "stride: the explainer draws every sample, and this gives an output of 2000000003 samples"),
    (dict(input=[1, 2, 3], weight=[1] * 20000), "weight: the explainer draws every sample, and "
                                                "this gives a kernel spanning 20000 samples"),
    (dict(input=[1] * 5000, weight=[1]), "input: the explainer draws every sample"),
    (dict(input=[1, 2, 3], weight=[1] * 3000, picture=True), "picture: scatter.png would draw 3 "
                                                             "rows of 3002 output cells"),
])
def test_requests_beyond_what_a_picture_can_show_are_refused_before_any_work(kwargs, words):
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ConvscopeError) as caught:
        convscope.explain(**kwargs)
    assert str(caught.value).startswith(words), str(caught.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KB


def test_an_override_too_long_for_the_command_line_is_one_line(tmp_path):
    weight = "[" + ",".join(["1"] * 20000) + "]"
    started = __import__("time").monotonic()
    done = script(tmp_path, "input=[1,2,3]", f"weight={weight}")
    assert done.returncode == 2 and done.stderr.startswith(
        "error: weight: an override of 40008 characters, more than 16384"), done.stderr
    assert __import__("time").monotonic() - started < 30  # Hydra's parser alone took 35 s


def test_an_animation_beyond_its_budget_is_refused(tmp_path):
    weight = "[" + ",".join(["1"] * 2000) + "]"
    done = script(tmp_path, "input=[1,2,3]", f"weight={weight}", "animate=true", "picture=false")
    assert done.returncode == 2 and done.stderr.startswith(
        "error: animate: 3 frames (one per input sample) of a 2002-sample output"), done.stderr
