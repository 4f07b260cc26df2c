"""convscope.formula on real torch layers against torch's measured output length, the rows the
pipeline computes against describe()'s, exact rates, and trace_stack on a single layer."""

import dataclasses
import random
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

import convscope
from convscope.config.schema import LayerConfig
from convscope.errors import ConvscopeError
from convscope.stack.build import build_stack
from convscope.stack.config_rows import config_rows
from convscope.stack.layer_formulas import layer_length
from convscope.stack.plan import plan_stack
from convscope.stack.rates import exact_rate
from convscope.stack.rows import count_macs
from convscope.stack.trace import trace_stack
from tests.test_layers import REFERENCE, random_stack


def test_formula_of_the_reference_transposed_conv_equals_torch():
    layer = nn.ConvTranspose1d(2, 3, 5, stride=2, padding=2, output_padding=1)
    text = convscope.formula(layer, 16000)
    assert text == "L_out = (16000-1)*2 - 2*2 + 1*(5-1) + 1 + 1 = 32000"
    assert text.endswith(f"= {layer(torch.zeros(1, 2, 16000)).shape[-1]}")


def random_layer(rng: random.Random) -> nn.Module:
    """One length-changing 1-D layer with random arguments (some of which torch refuses)."""
    k, s, p, d = rng.randint(1, 6), rng.randint(1, 4), rng.randint(0, 4), rng.randint(1, 3)
    kind = rng.choice(["Conv1d", "ConvTranspose1d", "Upsample", "MaxPool1d", "AvgPool1d",
                       "LPPool1d", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d", "ConstantPad1d",
                       "ZeroPad1d", "ReflectionPad1d", "ReplicationPad1d", "CircularPad1d"])
    if kind == "Conv1d":
        padding = rng.choice([p, p, "valid", "same"])
        mode = rng.choice(["zeros", "reflect", "replicate", "circular"])
        return nn.Conv1d(1, 1, k, stride=1 if padding == "same" else s, padding=padding,
                         dilation=d, padding_mode=mode)
    if kind == "ConvTranspose1d":
        return nn.ConvTranspose1d(1, 1, k, stride=s, padding=p, dilation=d,
                                  output_padding=rng.randint(0, max(s, d)))
    if kind == "Upsample":
        choice = rng.choice(["int", "float", "size"])
        if choice == "size":
            return nn.Upsample(size=rng.randint(1, 50))
        scale = s if choice == "int" else rng.choice([0.5, 1.5, 2.25, 0.3, 3.7])
        return nn.Upsample(scale_factor=scale, mode=rng.choice(["nearest", "linear"]))
    ceil = rng.random() < 0.5
    if kind == "MaxPool1d":
        return nn.MaxPool1d(k, stride=rng.choice([None, s]), padding=p, dilation=d, ceil_mode=ceil)
    if kind == "AvgPool1d":
        return nn.AvgPool1d(k, stride=rng.choice([None, s]), padding=p, ceil_mode=ceil)
    if kind == "LPPool1d":
        return nn.LPPool1d(2, k, stride=rng.choice([None, s]), ceil_mode=ceil)
    if kind.startswith("Adaptive"):
        return getattr(nn, kind)(rng.randint(1, 20))
    pads = (rng.randint(-3 if kind == "ConstantPad1d" else 0, 6), rng.randint(0, 6))
    return nn.ConstantPad1d(pads, 0.5) if kind == "ConstantPad1d" else getattr(nn, kind)(pads)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("seed", range(300))
def test_formula_equals_torch_measured_length(seed):
    """Where torch gives an output, the formula ends in its length; where torch refuses (or would
    give an empty output), the formula refuses too."""
    rng = random.Random(seed)
    layer, length = random_layer(rng), rng.randint(1, 24)
    try:
        measured = layer(torch.randn(1, 1, length)).shape[-1]
    except RuntimeError:
        measured = 0
    if measured < 1:
        with pytest.raises(ConvscopeError):
            layer_length(layer, length)
        return
    out, text = layer_length(layer, length)
    assert out == measured, (layer, length, text)
    if text.startswith("L_out = L_in ="):  # padding='same' and adaptive pools' output_size=None
        assert f"= {length}" in text
    else:
        assert text.split(" = ")[-1].split(" ")[0] == str(measured), text


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.LeakyReLU(0.1), nn.Tanh(), nn.Dropout(0.2),
                                   nn.Identity()])
def test_pointwise_layers_keep_the_length(layer):
    assert convscope.formula(layer, 37) == "L_out = L_in (pointwise)"


def test_linear_maps_the_last_axis_and_says_so():
    assert convscope.formula(nn.Linear(80, 64), 80) == \
        "L_out = out_features = 64 (Linear maps the last axis)"
    with pytest.raises(ConvscopeError, match="in_features=80"):
        convscope.formula(nn.Linear(80, 64), 32)


@pytest.mark.parametrize("layer,length,match", [
    (nn.Conv2d(1, 1, 3), 10, "no length formula for Conv2d"),
    (nn.LSTM(4, 4), 10, "no length formula for LSTM"),
    (nn.Conv1d(1, 1, 5), 0, "length must be an integer >= 1"),
    (nn.Conv1d(1, 1, 5), True, "length must be an integer"),
    (nn.Conv1d(1, 1, 5), 3, r"output length would be -1 \(< 1\): L_out = floor"),
    (nn.ReflectionPad1d(4), 4, "reflect padding"),
])
def test_formula_refuses_with_a_helpful_error(layer, length, match):
    with pytest.raises(ConvscopeError, match=match):
        convscope.formula(layer, length)


def pipeline_and_described_rows(specs, input_shape):
    """The pipeline's rows (their config keys checked, then cleared: describe() has no config)
    and describe()'s rows of the same built stack."""
    plans = plan_stack(specs, input_shape)
    stack = build_stack(plans, 0)
    rows = config_rows(plans, stack)
    assert [row.key for row in rows] == [f"model.layers.{p.index}" for p in plans]
    return (plans, [dataclasses.replace(row, key="") for row in rows],
            convscope.describe(stack, input_shape).rows)


def test_reference_stack_rows_from_the_plan_equal_describe():
    plans, rows, described = pipeline_and_described_rows(REFERENCE, (1, 1, 16000))
    assert rows == described
    assert described[-1].output_shape == [1, 3, 32000]
    assert [r.formula for r in rows] == [p.formula for p in plans]


@pytest.mark.parametrize("seed", range(40))
def test_config_stack_rows_equal_describe_and_the_plan(seed):
    """No forward pass in the pipeline: its rows (plan shapes) are exactly describe()'s (hook
    shapes), its formulas the plan's, its MACs count_macs' (FlopCounterMode-checked)."""
    specs, channels, length = random_stack(random.Random(seed))
    specs.append(LayerConfig(type="Upsample", scale_factor=2))
    try:
        plans, rows, described = pipeline_and_described_rows(specs, (1, channels, length))
    except ConvscopeError:
        return  # the stack shrinks the signal to nothing: test_layers covers the refusal
    assert rows == described
    assert [r.formula for r in rows] == [p.formula for p in plans]
    assert [r.macs for r in rows] == [count_macs(p) for p in plans]
    assert [r.name for r in rows] == [str(p.index) for p in plans]


def test_conv1d_same_padding_row_matches_the_plan():
    specs = [LayerConfig(type="Conv1d", out_channels=2, kernel_size=5, padding="same"),
             LayerConfig(type="GELU")]
    plans, rows, described = pipeline_and_described_rows(specs, (1, 1, 37))
    assert rows == described
    assert rows[0].formula == plans[0].formula == "L_out = L_in = 37 (padding='same')"


@pytest.mark.parametrize("value,expected", [
    (22050, Fraction(22050)), (22050 / 256, Fraction(22050, 256)),
    ("22050/256", Fraction(11025, 128)), (Fraction(16000, 3), Fraction(16000, 3)),
    (16000 / 3, Fraction(16000, 3)), (" 44100 ", 44100), (np.int64(8000), 8000),
    (np.float32(0.5), Fraction(1, 2)),
])
def test_exact_rate_accepts_ints_fractions_strings_and_floats(value, expected):
    assert exact_rate(value) == expected
    assert isinstance(exact_rate(value), Fraction)


@pytest.mark.parametrize("value", [0, -1, "abc", "1/0", float("nan"), float("inf"), True, None])
def test_exact_rate_refuses_what_is_not_a_positive_rate(value):
    with pytest.raises(ConvscopeError, match="sample_rate"):
        exact_rate(value)


def test_trace_stack_takes_a_single_layer():
    layer = nn.ConvTranspose1d(1, 2, 4, stride=2, padding=1)
    x = np.random.default_rng(0).standard_normal((1, 1, 50)).astype(np.float32)
    traces = trace_stack(layer, x, torch.device("cpu"))
    assert [(t.index, t.type) for t in traces] == [(0, "ConvTranspose1d")]
    with torch.no_grad():
        np.testing.assert_array_equal(traces[0].output, layer(torch.as_tensor(x)).numpy())
    assert not layer._forward_hooks
