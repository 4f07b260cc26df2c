"""The length formulas against torch over a grid of parameter combinations."""

import itertools

import pytest
import torch

from convscope.stack.lengths import (
    conv1d_formula,
    conv1d_output_length,
    conv_transpose1d_formula,
    conv_transpose1d_output_length,
)


def test_reference_example_formula_reads_as_documented():
    assert conv_transpose1d_formula(16000, 5, 2, 2, 1, 1) == \
        "L_out = (16000-1)*2 - 2*2 + 1*(5-1) + 1 + 1 = 32000"
    assert conv1d_formula(6, 3, 3, 0, 1).endswith("= 2")


GRID = list(itertools.product([1, 2, 7, 16, 33], [1, 2, 3, 5], [1, 2, 3], [0, 1, 2], [1, 2, 3]))


@pytest.mark.parametrize("length,k,s,p,d", GRID)
def test_conv1d_length_matches_torch(length, k, s, p, d):
    expected = conv1d_output_length(length, k, s, p, d)
    layer = torch.nn.Conv1d(1, 1, k, stride=s, padding=p, dilation=d)
    if expected < 1:
        with pytest.raises(RuntimeError):
            layer(torch.zeros(1, 1, length))
    else:
        assert layer(torch.zeros(1, 1, length)).shape[-1] == expected


@pytest.mark.parametrize("length,k,s,p,d", GRID)
def test_conv_transpose1d_length_matches_torch(length, k, s, p, d):
    for op in range(max(s, d)):
        expected = conv_transpose1d_output_length(length, k, s, p, op, d)
        layer = torch.nn.ConvTranspose1d(1, 1, k, stride=s, padding=p, output_padding=op,
                                         dilation=d)
        if expected < 1:
            with pytest.raises(RuntimeError):
                layer(torch.zeros(1, 1, length))
        else:
            assert layer(torch.zeros(1, 1, length)).shape[-1] == expected


def test_helpers_take_the_tuples_torch_layers_store():
    conv = torch.nn.Conv1d(1, 1, 5, stride=2, padding=2, dilation=2)
    assert conv.kernel_size == (5,)  # what a built layer holds
    args = (conv.kernel_size, conv.stride, conv.padding, conv.dilation)
    assert conv1d_formula(37, *args) == conv1d_formula(37, 5, 2, 2, 2)
    assert conv1d_output_length(37, *args) == conv(torch.zeros(1, 1, 37)).shape[-1]
    tconv = torch.nn.ConvTranspose1d(2, 3, 5, stride=2, padding=2, output_padding=1)
    targs = (tconv.kernel_size, tconv.stride, tconv.padding, tconv.output_padding,
             tconv.dilation)
    assert conv_transpose1d_formula(16000, *targs) == \
        "L_out = (16000-1)*2 - 2*2 + 1*(5-1) + 1 + 1 = 32000"
    assert conv_transpose1d_output_length(16000, *targs) == 32000


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv1d_string_padding_matches_torch(padding):
    layer = torch.nn.Conv1d(1, 1, 4, padding=padding, dilation=2)
    got = conv1d_output_length(40, layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    assert got == layer(torch.zeros(1, 1, 40)).shape[-1]
    text = conv1d_formula(40, layer.kernel_size, layer.stride, layer.padding, layer.dilation)
    assert text.endswith(f"= {got}") if padding == "valid" else text == \
        "L_out = L_in = 40 (padding='same')"
