"""Argument checks of the NumPy reference: ConvscopeErrors naming the argument and its value."""

from __future__ import annotations

import numpy as np

from convscope.errors import ConvscopeError
from convscope.explainer.reference.arrays import Ints
from convscope.stack.lengths import conv_transpose1d_formula, conv_transpose1d_output_length


def check_conv_args(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Ints,
                    padding: Ints, dilation: Ints, groups: int) -> None:
    _check_common(x, weight, stride, padding, dilation, groups)
    c_in, c_out, in_per_group = x.shape[1], weight.shape[0], weight.shape[1]
    if c_in % groups or c_out % groups:
        raise ConvscopeError(
            f"in_channels={c_in} and out_channels={c_out} must both be divisible by "
            f"groups={groups}")
    if in_per_group * groups != c_in:
        raise ConvscopeError(
            f"weight has shape {weight.shape}, layout (out, in/groups, k): it expects "
            f"{in_per_group * groups} input channels with groups={groups}, the input has {c_in}")
    _check_bias(bias, c_out)
    for axis, (m, k, p, d) in enumerate(zip(x.shape[2:], weight.shape[2:], padding, dilation)):
        span = d * (k - 1) + 1
        if span > m + 2 * p:
            raise ConvscopeError(
                f"the weight's {k} taps span dilation*(k-1)+1 = {d}*({k}-1)+1 = {span} samples, "
                f"more than the padded input's L+2*padding = {m}+2*{p} = {m + 2 * p}"
                f"{_axis_note(axis, x.ndim)}")


def check_conv_transpose_args(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                              stride: Ints, padding: Ints, output_padding: Ints,
                              dilation: Ints, groups: int) -> None:
    _check_common(x, weight, stride, padding, dilation, groups)
    c_in = x.shape[1]
    if weight.shape[0] != c_in:
        raise ConvscopeError(
            f"weight has shape {weight.shape}, layout (in, out/groups, k): its first axis must "
            f"equal the input's {c_in} channels")
    if c_in % groups:
        raise ConvscopeError(f"in_channels={c_in} must be divisible by groups={groups}")
    _check_bias(bias, weight.shape[1] * groups)
    for axis, (m, k, s, p, op, d) in enumerate(zip(x.shape[2:], weight.shape[2:], stride, padding,
                                                   output_padding, dilation)):
        where = _axis_note(axis, x.ndim)
        if op < 0:
            raise ConvscopeError(f"output_padding must be >= 0, got output_padding={op}{where}")
        if op >= s and op >= d:
            raise ConvscopeError(
                f"output_padding must be smaller than stride or dilation, got "
                f"output_padding={op}, stride={s}, dilation={d}{where}")
        out = conv_transpose1d_output_length(m, k, s, p, op, d)
        if out < 1:
            raise ConvscopeError(
                f"padding={p} leaves no output: "
                f"{conv_transpose1d_formula(m, k, s, p, op, d)}{where}")


def _check_common(x: np.ndarray, weight: np.ndarray, stride: Ints, padding: Ints,
                   dilation: Ints, groups: int) -> None:
    dims = len(stride)
    if x.ndim != dims + 2 or weight.ndim != dims + 2:
        raise ConvscopeError(
            f"input and weight must have {dims + 2} axes (N, C, {'L' if dims == 1 else 'H, W'}) "
            f"and (channels, channels, kernel...), got shapes {x.shape} and {weight.shape}")
    if x.size == 0:
        raise ConvscopeError(f"input is empty (shape {x.shape})")
    if weight.size == 0:
        raise ConvscopeError(f"weight is empty (shape {weight.shape})")
    for name, values, low in (("stride", stride, 1), ("padding", padding, 0),
                              ("dilation", dilation, 1)):
        if min(values) < low:
            shown = values[0] if dims == 1 else values
            raise ConvscopeError(f"{name} must be >= {low}, got {name}={shown}")
    if groups < 1:
        raise ConvscopeError(f"groups must be >= 1, got groups={groups}")


def _check_bias(bias: np.ndarray | None, c_out: int) -> None:
    if bias is not None and bias.shape != (c_out,):
        raise ConvscopeError(f"bias must have one value per output channel ({c_out}), "
                             f"got shape {bias.shape}")


def _axis_note(axis: int, ndim: int) -> str:
    return "" if ndim == 3 else f" (along {'height' if axis == 0 else 'width'})"
