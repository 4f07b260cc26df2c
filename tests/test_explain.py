"""convscope.explain in-process: config schema, modes, errors and the walkthrough text."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from convscope.errors import ConvscopeError
from convscope.explainer.custom import custom_example
from convscope.explainer.explain import (
    ExplainConfig,
    explain,
    register_explain_schema,
    to_explain_config,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def composed(*overrides: str, hydra_config: bool = False) -> ExplainConfig:
    register_explain_schema()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return to_explain_config(compose("explain", overrides=list(overrides),
                                         return_hydra_config=hydra_config))


def run(cfg: ExplainConfig, out_dir: Path | None = None) -> tuple[int, str]:
    out = io.StringIO()
    status = explain(cfg, out_dir, out)
    return status, out.getvalue()


def test_config_composes_with_typed_values():
    cfg = composed("input=[1,2,3]", "weight=[1,0,-1]", "stride=2", "bias=0.5")
    assert cfg.input == [1.0, 2.0, 3.0] and cfg.stride == 2 and cfg.bias == 0.5
    assert composed() == ExplainConfig()


def test_config_ignores_hydra_node_with_unresolved_job_keys():
    """hydra.sweep.subdir interpolates ${hydra.job.num}, missing at compose time."""
    assert composed("stride=2", hydra_config=True) == ExplainConfig(stride=2)


def test_plain_dict_errors_name_their_key():
    with pytest.raises(ConvscopeError, match=r"^config stride: Value 'abc' of type 'str'"):
        to_explain_config({"stride": "abc", "hydra": {}})


@pytest.mark.parametrize("override", ["stride=abc", "input=5", "nonsense=1"])
def test_config_rejects_wrong_types_and_unknown_keys(override):
    with pytest.raises((HydraException, OmegaConfBaseException)):
        composed(override)


@pytest.mark.parametrize("cfg, words", [
    (ExplainConfig(example="foo"), "example 'foo' is not in the catalogue; known: "),
    (ExplainConfig(input=[]), "input is empty"),
    (ExplainConfig(input=[1.0]), "weight is missing"),
    (ExplainConfig(input=[1.0, 2.0], weight=[1.0, 1.0, 1.0], conv="conv1d"),
     "more than the padded input"),
    (ExplainConfig(input=[1.0], weight=[1.0], stride=2, output_padding=2),
     "output_padding=2, stride=2, dilation=1"),
    (ExplainConfig(stride=2), "stride=2 only applies to custom input"),
    (ExplainConfig(example="tconv1d_basic", input=[1.0]), "not both"),
    (ExplainConfig(input=[1.0], weight=[1.0], conv="fft"), "conv must be one of"),
])
def test_bad_requests_raise_a_convscope_error(cfg, words):
    with pytest.raises(ConvscopeError, match=words):
        run(cfg)


def test_conv1d_walkthrough_spells_out_each_sum():
    status, out = run(ExplainConfig(example="conv1d_k3_padding1"))
    assert status == 0
    assert "y[0] = x[-1]·w[0] + x[0]·w[1] + x[1]·w[2] = 0·2 + 1·2 + 2·2 = 6" in out


def test_by_hand_example_reads_like_the_tutorial():
    status, out = run(ExplainConfig(example="conv1d_by_hand"))
    assert status == 0
    assert "y[0,0,0] = x[0,0,0:5]·w[0,0] + x[0,1,0:5]·w[0,1] + b[0] = " in out


def test_dilation_walkthrough_shows_the_spread_kernel():
    status, out = run(ExplainConfig(example="tconv1d_dilation2"))
    assert status == 0
    assert "as if w' were [3, 0, 2, 0, 1]" in out
    assert "dilation=2: the exact padding is d*(k-1)-p = 4, not k-p-1 = 2" in out


@pytest.mark.parametrize("name", ["tconv2d_padding1", "conv1d_depthwise", "tconv1d_audio_demo"])
def test_other_kinds_explain_and_draw(name, tmp_path):
    status, out = run(ExplainConfig(example=name), tmp_path)
    assert status == 0
    assert (tmp_path / "scatter.png").stat().st_size > 0
    assert f"picture: {tmp_path / 'scatter.png'}" in out


def test_custom_conv1d(tmp_path):
    status, out = run(ExplainConfig(conv="conv1d", input=[1, 2, 3, 4], weight=[1, -1], bias=0.5))
    assert status == 0
    assert "y[0] = x[0]·w[0] + x[1]·w[1] + b = 1·1 + 2·(-1) + 0.5 = -0.5" in out


# ---------------------------------------------------------------------------------------------
# Several channels: the shape rule (custom.py) and its one-line errors
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, words", [
    (dict(input=[[1, 2], [3]], weight=[1]),
     "input is ragged: input[0] has 2 numbers but input[1] has 1 number"),
    (dict(input=[1, [2]], weight=[1]), "input is ragged"),
    (dict(input=[[[1, 2]]], weight=[1]), "input has shape (1, 1, 2): give (L) samples"),
    (dict(input=[[], []], weight=[1]), "input[0] is empty"),
    (dict(input=[1, 2], weight=[[]]), "weight[0] is empty"),
    (dict(input=[[1, 2], [3, 4]], weight=[1, 0, -1]),
     "weight has shape (3,) = (k), taps for one input channel, but the input has 2 channels: "
     "expected (C_in, k) = (2, k)"),
    (dict(input=[[1, 2], [3, 4]], weight=[[1, 0], [0, 1], [1, 1]]),
     "weight has shape (3, 2) = (C_in, k), one row of taps per input channel, but the input has "
     "2 channels: expected (2, k), or ConvTranspose1d's own layout (C_in, C_out, k)"),
    (dict(input=[[1, 2], [3, 4]], weight=[[[1, 2]]]),
     "weight has shape (1, 1, 2) = ConvTranspose1d's (C_in, C_out, k), but the input has 2 "
     "channels: expected (2, C_out, k)"),
    (dict(conv="conv1d", input=[[1, 2], [3, 4]], weight=[[[1, 2]], [[3, 4]]]),
     "weight has shape (2, 1, 2) = Conv1d's (C_out, C_in, k), but the input has 2 channels: "
     "expected (C_out, 2, k)"),
    (dict(input=[1, 2], weight=[[[[1]]]]), "weight has shape (1, 1, 1, 1): give (k) taps"),
    (dict(input=[1, 2], weight=[[[1], [2]]], bias=0.5),
     "bias=0.5 is one number, but the layer has 2 output channels (weight (1, 2, 1) = "
     "(C_in, C_out, k)): expected shape (2,)"),
    (dict(input=[1, 2], weight=[1], bias=[1, 2]),
     "bias has shape (2,), but the layer has 1 output channel"),
    (dict(input=[1, 2], weight=[1], bias="abc"), "bias must be a number or a list of numbers"),
    (dict(input=[1, "x"], weight=[1]), "input[1] must be a number, got x"),
    (dict(input=[True, False], weight=[1]), "input[0] must be a number"),
    (dict(input=[1, float("nan")], weight=[1]), "input must be finite numbers"),
])
def test_shape_errors_name_the_key_and_the_shapes(kwargs, words):
    with pytest.raises(ConvscopeError) as caught:
        run(ExplainConfig(**kwargs))
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kwargs, torch_layout", [
    (dict(input=[[1, 2, 3], [4, 5, 6]], weight=[[1, 0, -1], [2, 1, 1]], bias=0.5, stride=2),
     (2, 1, 3)),
    (dict(input=[[1, 2, 3], [4, 5, 6]], weight=[[[1, 2], [3, 4], [5, 6]], [[0, 1], [1, 0], [2, 2]]],
          bias=[1, 2, 3], padding=1, output_padding=1, stride=2), (2, 3, 2)),
    (dict(conv="conv1d", input=[[1, 2, 3], [4, 5, 6]], weight=[[1, 1], [1, -1]]), (1, 2, 2)),
    (dict(conv="conv1d", input=[[1, 2, 3], [4, 5, 6]], weight=[[[1, 1], [1, -1]], [[0, 1], [2, 0]]],
          bias=[0.5, 1]), (2, 2, 2)),
])
def test_several_channels_follow_torchs_layout(kwargs, torch_layout):
    import torch
    import torch.nn.functional as F

    cfg = ExplainConfig(**kwargs)
    example = custom_example(cfg)
    assert example.layer.weight.shape == torch_layout
    status, out = run(cfg)
    assert status == 0 and "✗" not in out
    x = torch.tensor(cfg.input, dtype=torch.float64)[None]
    w = torch.tensor(example.layer.weight.array())
    b = None if cfg.bias is None else torch.tensor(example.layer.bias.array())
    if cfg.conv == "conv1d":
        expected = F.conv1d(x, w, b)
    else:
        expected = F.conv_transpose1d(x, w, b, stride=cfg.stride, padding=cfg.padding,
                                      output_padding=cfg.output_padding)
    np.testing.assert_allclose(example.layer.reference(x.numpy()), expected.numpy(), atol=1e-12)


def test_several_output_channels_get_a_scatter_table_each():
    status, out = run(ExplainConfig(input=[1, 2], weight=[[[1, 1], [2, -1]]], bias=[0, 10]))
    assert status == 0
    assert "Output channel 0:" in out and "Output channel 1:" in out
    assert "x[0,1]=2 × w[0,1]" in out and "sum + b[1]" in out
    assert "torch        [[1, 3, 2], [12, 13, 8]]" in out
    assert "zero insertion, whose kernel here also swaps the channel axes" in out
