"""convscope.explain in-process: config schema, modes, errors and the walkthrough text."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from convscope.errors import ConvscopeError
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
