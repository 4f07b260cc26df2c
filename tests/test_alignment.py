"""stack.alignment: the per-layer extra samples and the fixes, checked by rebuilding the layer with
the fix and measuring what torch gives for many input lengths."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
import torch
from torch import nn

from convscope.stack.alignment import check_alignment, exact_fix, expected_length, layer_extra


def _random_layer(rng: random.Random) -> nn.Module:
    k, s, d = rng.randint(1, 12), rng.randint(1, 9), rng.choice([1, 1, 2, 3])
    if rng.random() < 0.6:
        p = rng.randint(0, (d * (k - 1)) // 2 + 1)
        op = rng.randrange(max(s, d))
        return nn.ConvTranspose1d(1, 1, k, stride=s, padding=p, output_padding=op, dilation=d)
    p = rng.randint(0, (d * (k - 1) + 1) // 2)
    return nn.Conv1d(1, 1, k, stride=s, padding=p, dilation=d)


def _measured_extra(layer: nn.Module, length: int) -> int:
    out = layer(torch.zeros(1, 1, length)).shape[-1]
    stride = layer.stride[0]
    return out - length * stride if isinstance(layer, nn.ConvTranspose1d) else out - length // stride


def test_extra_per_input_is_what_torch_adds_for_every_length():
    rng = random.Random(0)
    for _ in range(300):
        layer = _random_layer(rng)
        stride = layer.stride[0]
        for length in (stride * 40, stride * 53, stride * 64):
            assert _measured_extra(layer, length) == layer_extra(layer), layer


def test_fix_makes_the_layer_exact_for_every_length():
    rng = random.Random(1)
    fixed = unfixable = 0
    for _ in range(300):
        layer = _random_layer(rng)
        fix, why = exact_fix(layer)
        kw = dict(stride=layer.stride[0], dilation=layer.dilation[0])
        if fix is None:
            unfixable += 1
            assert why
            continue
        if isinstance(layer, nn.ConvTranspose1d):
            rebuilt = nn.ConvTranspose1d(1, 1, layer.kernel_size[0], padding=fix.padding,
                                         output_padding=fix.output_padding, **kw)
        else:
            assert fix.output_padding == 0
            rebuilt = nn.Conv1d(1, 1, layer.kernel_size[0], padding=fix.padding, **kw)
        for length in (kw["stride"] * 40, kw["stride"] * 53):
            assert _measured_extra(rebuilt, length) == 0, (layer, fix)
        fixed += 1
    assert fixed > 200 and unfixable > 0  # both branches exercised


def test_hifigan_odd_stride_padding_leaves_one_sample_and_the_fix_is_minimal():
    u, k = 3, 6
    layer = nn.ConvTranspose1d(4, 4, k, stride=u, padding=(k - u) // 2)
    assert layer_extra(layer) == 1
    fix, _ = exact_fix(layer)
    assert (fix.padding, fix.output_padding) == (2, 1)
    even = nn.ConvTranspose1d(4, 4, 16, stride=8, padding=4)
    assert layer_extra(even) == 0 and exact_fix(even)[0].padding == 4


def test_even_kernel_stride_one_conv_has_no_symmetric_fix():
    fix, why = exact_fix(nn.Conv1d(1, 1, 4, padding=1))
    assert fix is None and "padding='same'" in why


def test_check_alignment_names_culprits_in_call_order():
    layers = [("model.layers.0", nn.Conv1d(1, 1, 7, padding=3), "Conv1d"),
              ("model.layers.1", nn.ConvTranspose1d(1, 1, 6, stride=3, padding=1),
               "ConvTranspose1d"),
              ("model.layers.2", nn.LeakyReLU(), "LeakyReLU")]
    result = check_alignment(30, 31, "T x hop_length = 10 x 3", layers, target_samples=32)
    doc = result.as_json()
    assert doc["difference"] == 1 and doc["ok"] is False
    assert [c["key"] for c in doc["culprits"]] == ["model.layers.1"]
    assert doc["culprits"][0]["fix"] == {"padding": 2, "output_padding": 1}
    assert "model.layers.1" in result.summary() and "target audio 32" in result.summary()


def test_expected_length_for_frames_and_for_samples():
    assert expected_length(64, Fraction(256), 256)[:1] == (16384,)
    _, _, note = expected_length(64, Fraction(200), 256)
    assert "hop_length=256" in note
    assert expected_length(16000, Fraction(2), None)[0] == 32000
    samples, rule, note = expected_length(15999, Fraction(1, 2), None)
    assert samples == 7999 and "rounded down" in rule and note


@pytest.mark.parametrize("padding", ["same", 0])
def test_stride_one_conv_keeps_length_only_with_same_or_full_padding(padding):
    layer = nn.Conv1d(1, 1, 5, padding=padding)
    assert layer_extra(layer) == (0 if padding == "same" else -4)


def _vocoder_cfg(layers):
    from convscope.config.schema import DataConfig, ModelConfig, PlotsConfig, RunConfig

    data = DataConfig(path="data/speech.wav", sr=22050, start=0.0, end=0.5, features="log_mel",
                      n_fft=1024, hop_length=256, n_mels=80)
    return RunConfig(data=data, model=ModelConfig(name="odd", layers=layers),
                     plots=PlotsConfig(enabled=False))


def test_a_run_names_the_odd_stride_layer_and_its_fix_makes_the_run_exact(tmp_path):
    """HiFi-GAN's padding (k-u)//2 with an odd k-u: shapes.json says which layer adds a sample
    per frame and how to pad it; the run rebuilt with that fix gives exactly T x hop_length."""
    import json
    from dataclasses import replace

    from convscope.config.schema import LayerConfig as L
    from convscope.pipeline.single import run
    from tests.helpers import REPO

    k1, u1, k2, u2 = 6, 4, 14, 64  # 6-4 even: exact; 14-64 < 0: needs output_padding=50
    k3, u3 = 5, 1
    layers = [L(type="Conv1d", out_channels=8, kernel_size=7, padding=3),
              L(type="ConvTranspose1d", out_channels=4, kernel_size=k1, stride=u1,
                padding=(k1 - u1) // 2),
              L(type="ConvTranspose1d", out_channels=1, kernel_size=k2, stride=u2,
                padding=(k2 - u2) // 2 if k2 > u2 else 0),
              L(type="ConvTranspose1d", out_channels=1, kernel_size=k3, stride=u3, padding=1)]
    run(_vocoder_cfg(layers), tmp_path / "odd", base_dir=REPO)
    shapes = json.loads((tmp_path / "odd" / "shapes.json").read_text())
    doc = shapes["alignment"]
    assert doc["ok"] is False and doc["expected"] == 256 * shapes["input"]["shape"][-1]
    assert doc["got"] - doc["expected"] == doc["difference"]
    culprits = {c["key"]: c for c in doc["culprits"]}
    assert set(culprits) == {"model.layers.2", "model.layers.3"}
    page = (tmp_path / "odd" / "index.html").read_text()
    fix = culprits["model.layers.2"]["fix"]
    assert (f"<code>model.layers.2</code> (ConvTranspose1d) adds "
            f"{culprits['model.layers.2']['extra_per_input']:+d} per call, fix: <code>padding="
            f"{fix['padding']} output_padding={fix['output_padding']}</code>") in page
    fixed = list(layers)
    for key, c in culprits.items():
        index = int(key.rsplit(".", 1)[1])
        fixed[index] = replace(layers[index], **c["fix"])
    run(_vocoder_cfg(fixed), tmp_path / "fixed", base_dir=REPO)
    again = json.loads((tmp_path / "fixed" / "shapes.json").read_text())
    assert again["alignment"]["ok"] is True and again["alignment"]["culprits"] == []
    T = again["input"]["shape"][-1]
    assert again["output"]["shape"] == [1, 1, 256 * T] and again["alignment"]["got"] == 256 * T
    assert again["alignment"]["target_samples"] == again["input"]["target"]["samples"]
    assert "<b>Alignment</b>: expected T x hop_length" in (tmp_path / "fixed" / "index.html"
                                                           ).read_text()
