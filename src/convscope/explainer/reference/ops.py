"""From-scratch NumPy versions of torch's conv1d, conv_transpose1d and conv_transpose2d.

Same argument names and tensor layouts as ``torch.nn.functional``:

    conv1d            x (N, C_in, L)     weight (C_out, C_in/groups, k)
    conv_transpose1d  x (N, C_in, L)     weight (C_in, C_out/groups, k)
    conv_transpose2d  x (N, C_in, H, W)  weight (C_in, C_out/groups, kH, kW)

A transposed convolution is computed three ways that must agree:

    scatter      each input sample adds a weighted copy of the kernel into the output
    zero_insert  insert stride-1 zeros between samples, pad d*(k-1)-p (plus output_padding on
                 the right), convolve with the flipped, channel-swapped kernel
    matrix       y = C^T x, where C is the matrix of the matching Conv1d (1D only)

Loops run over kernel taps, never over samples, so a second of audio takes milliseconds.
Bad arguments raise ConvscopeError naming the argument and its value; the names match the keys
of scripts/explain.py, so those messages reach the user as they are.
"""

from __future__ import annotations

import numpy as np

from convscope.errors import ConvscopeError
from convscope.explainer.reference.arrays import (
    IntOrInts,
    Ints,
    _add_bias,
    _as_arrays,
    _dtype,
    _ints,
)
from convscope.explainer.reference.checks import check_conv_args, check_conv_transpose_args
from convscope.explainer.reference.views import (
    _conv_nd,
    conv_matrix,
    flip_kernel,
    full_canvas_shape,
    zero_insert_and_pad,
)
from convscope.stack.lengths import conv_transpose1d_output_length

TRANSPOSE_METHODS_1D = ("scatter", "zero_insert", "matrix")
TRANSPOSE_METHODS_2D = ("scatter", "zero_insert")


# ---------------------------------------------------------------------------------------------
# Public API: torch's functions
# ---------------------------------------------------------------------------------------------

def conv1d(x, weight, bias=None, stride: IntOrInts = 1, padding: IntOrInts = 0,
           dilation: IntOrInts = 1, groups: int = 1) -> np.ndarray:
    """torch.nn.functional.conv1d: y[n,o,l] = b[o] + sum_{i,j} w[o,i,j] * x_pad[n,i,l*s + j*d]."""
    return _conv(x, weight, bias, stride, padding, dilation, groups, dims=1)


def conv_transpose1d(x, weight, bias=None, stride: IntOrInts = 1, padding: IntOrInts = 0,
                     output_padding: IntOrInts = 0, dilation: IntOrInts = 1, groups: int = 1,
                     method: str = "scatter") -> np.ndarray:
    """torch.nn.functional.conv_transpose1d, computed by `method` (see the module docstring)."""
    return _conv_transpose(x, weight, bias, stride, padding, output_padding, dilation, groups,
                           method, dims=1)


def conv_transpose2d(x, weight, bias=None, stride: IntOrInts = 1, padding: IntOrInts = 0,
                     output_padding: IntOrInts = 0, dilation: IntOrInts = 1, groups: int = 1,
                     method: str = "scatter") -> np.ndarray:
    """torch.nn.functional.conv_transpose2d by "scatter" or "zero_insert"; ints or (h, w) pairs."""
    return _conv_transpose(x, weight, bias, stride, padding, output_padding, dilation, groups,
                           method, dims=2)


def _conv(x, weight, bias, stride, padding, dilation, groups, dims: int) -> np.ndarray:
    x, weight, bias = _as_arrays(x, weight, bias)
    stride, padding, dilation = (_ints(v, dims, name) for v, name in
                                 ((stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    check_conv_args(x, weight, bias, stride, padding, dilation, groups)
    return _conv_nd(x, weight, bias, stride, padding, dilation, groups)


def _conv_transpose(x, weight, bias, stride, padding, output_padding, dilation, groups, method,
                    dims: int) -> np.ndarray:
    methods = TRANSPOSE_METHODS_1D if dims == 1 else TRANSPOSE_METHODS_2D
    if method not in methods:
        raise ConvscopeError(f"method must be one of {', '.join(methods)}, got {method!r}")
    x, weight, bias = _as_arrays(x, weight, bias)
    stride, padding, output_padding, dilation = (
        _ints(v, dims, name) for v, name in ((stride, "stride"), (padding, "padding"),
                                             (output_padding, "output_padding"),
                                             (dilation, "dilation")))
    check_conv_transpose_args(x, weight, bias, stride, padding, output_padding, dilation, groups)
    if method == "scatter":
        return _scatter_nd(x, weight, bias, stride, padding, output_padding, dilation, groups)
    if method == "zero_insert":
        padded = zero_insert_and_pad(x, weight.shape[2:], stride, padding, output_padding, dilation)
        ones = (1,) * dims
        return _conv_nd(padded, flip_kernel(weight, groups), bias, ones, (0,) * dims, dilation,
                        groups)
    return _matrix_transpose1d(x, weight, bias, stride[0], padding[0], output_padding[0],
                               dilation[0], groups)


# ---------------------------------------------------------------------------------------------
# The computations (any number of spatial dims; loops over kernel taps only)
# ---------------------------------------------------------------------------------------------


def _scatter_nd(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Ints,
                padding: Ints, output_padding: Ints, dilation: Ints, groups: int) -> np.ndarray:
    n, c_in, *length = x.shape
    _, out_per_group, *kernel = weight.shape
    canvas = full_canvas_shape(length, kernel, stride, output_padding, dilation)
    xg = x.reshape(n, groups, c_in // groups, *length)
    wg = weight.reshape(groups, c_in // groups, out_per_group, *kernel)
    y = np.zeros((n, groups, out_per_group, *canvas), dtype=_dtype(x, weight))
    for tap in np.ndindex(*kernel):
        # Input sample l adds x[l] * w[j] at canvas position l*s + j*d: one input feeds k outputs.
        window = tuple(slice(j * d, j * d + s * (m - 1) + 1, s)
                       for j, d, s, m in zip(tap, dilation, stride, length))
        y[(..., *window)] += np.einsum("ngi...,gio->ngo...", xg, wg[(..., *tap)])
    # padding removes p positions from each end of the canvas; output_padding was already
    # added at the right end of the canvas, so it survives the crop on that side only.
    out_len = tuple(c - 2 * p for c, p in zip(canvas, padding))
    crop = tuple(slice(p, p + m) for p, m in zip(padding, out_len))
    return _add_bias(y[(..., *crop)].reshape(n, out_per_group * groups, *out_len), bias)


def _matrix_transpose1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int,
                        padding: int, output_padding: int, dilation: int,
                        groups: int) -> np.ndarray:
    n, c_in, length = x.shape
    out_len = conv_transpose1d_output_length(length, weight.shape[2], stride, padding,
                                             output_padding, dilation)
    # The matching Conv1d maps the transposed conv's output space back to its input space,
    # reading the same weight tensor as (out=C_in, in/groups=C_out/groups, k).
    matrix = conv_matrix(weight, out_len, stride, padding, dilation, groups, output_length=length)
    y = x.reshape(n, c_in * length) @ matrix  # row-vector form of y = C^T x
    return _add_bias(y.reshape(n, -1, out_len), bias)


# ---------------------------------------------------------------------------------------------
# Pieces the step-by-step explanation shows
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Argument checks: torch's rules, worded with the argument names and values
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------
