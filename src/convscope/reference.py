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

from typing import Iterator, Sequence

import numpy as np

from convscope.errors import ConvscopeError
from convscope.lengths import (conv1d_output_length, conv_transpose1d_formula,
                               conv_transpose1d_output_length)

IntOrInts = int | Sequence[int]
Ints = tuple[int, ...]

TRANSPOSE_METHODS_1D = ("scatter", "zero_insert", "matrix")
TRANSPOSE_METHODS_2D = ("scatter", "zero_insert")
MAX_MATRIX_ENTRIES = 20_000_000  # 160 MB of float64: the matrix view is for small examples


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

def _conv_nd(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: Ints,
             padding: Ints, dilation: Ints, groups: int) -> np.ndarray:
    n, c_in = x.shape[:2]
    c_out, in_per_group, *kernel = weight.shape
    x_padded = pad_or_crop(x, padding, padding)
    out_len = tuple(conv1d_output_length(m, k, s, 0, d)
                    for m, k, s, d in zip(x_padded.shape[2:], kernel, stride, dilation))
    xg = x_padded.reshape(n, groups, in_per_group, *x_padded.shape[2:])
    wg = weight.reshape(groups, c_out // groups, in_per_group, *kernel)
    y = np.zeros((n, groups, c_out // groups, *out_len), dtype=_dtype(x, weight))
    for tap in np.ndindex(*kernel):
        # For tap j, output position l reads the padded input at l*s + j*d.
        window = tuple(slice(j * d, j * d + s * (m - 1) + 1, s)
                       for j, d, s, m in zip(tap, dilation, stride, out_len))
        y += np.einsum("ngi...,goi->ngo...", xg[(..., *window)], wg[(..., *tap)])
    return _add_bias(y.reshape(n, c_out, *out_len), bias)


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

def full_canvas_shape(length: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                      output_padding: Sequence[int], dilation: Sequence[int]) -> Ints:
    """Where the scatter writes before padding crops: (L-1)*s + d*(k-1) + 1, + output_padding."""
    return tuple(conv_transpose1d_output_length(m, k, s, 0, op, d)
                 for m, k, s, op, d in zip(length, kernel, stride, output_padding, dilation))


def scatter_rows(x, weight, stride: int = 1, padding: int = 0, output_padding: int = 0,
                 dilation: int = 1, groups: int = 1, crop: bool = True) -> np.ndarray:
    """Each input sample's contribution to a conv_transpose1d, shape (N, C_in, L_in, C_out, L).

    rows[n, i, l] is the weighted kernel copy x[n,i,l] * w[i, :, :] placed at l*stride; summed
    over i and l (plus bias) the rows give the output. With crop=False the rows span the full
    canvas before padding crops it: canvas index u is output index u - padding.
    """
    x, weight, _ = _as_arrays(x, weight, None)
    stride_, padding_, op_, dilation_ = (_ints(v, 1, name) for v, name in (
        (stride, "stride"), (padding, "padding"), (output_padding, "output_padding"),
        (dilation, "dilation")))
    check_conv_transpose_args(x, weight, None, stride_, padding_, op_, dilation_, groups)
    n, c_in, length = x.shape
    kernel = weight.shape[2]
    dense = block_diagonal_weight(weight, groups)  # (C_in, C_out, k), zero across groups
    (canvas,) = full_canvas_shape((length,), (kernel,), stride_, op_, dilation_)
    rows = np.zeros((n, c_in, length, dense.shape[1], canvas), dtype=_dtype(x, weight))
    samples = np.arange(length)
    for j in range(kernel):
        landing = np.zeros((length, canvas))  # landing[l, u] = 1 where tap j of sample l lands
        landing[samples, samples * stride + j * dilation] = 1.0
        rows += np.einsum("nil,io,lu->nilou", x, dense[:, :, j], landing)
    if not crop:
        return rows
    out_len = conv_transpose1d_output_length(length, kernel, stride, padding, output_padding,
                                             dilation)
    return rows[..., padding:padding + out_len]


def insert_zeros(x, stride: IntOrInts) -> np.ndarray:
    """Put stride-1 zeros between neighbouring samples (none after the last) on each axis."""
    x = np.asarray(x)
    stride_ = _ints(stride, x.ndim - 2, "stride")
    shape = tuple((m - 1) * s + 1 for m, s in zip(x.shape[2:], stride_))
    out = np.zeros(x.shape[:2] + shape, dtype=x.dtype)
    out[(..., *(slice(None, None, s) for s in stride_))] = x
    return out


def pad_or_crop(x: np.ndarray, left: Sequence[int], right: Sequence[int]) -> np.ndarray:
    """Zero-pad the spatial axes by left/right; a negative amount crops that many instead."""
    widths = [(0, 0), (0, 0)] + [(max(a, 0), max(b, 0)) for a, b in zip(left, right)]
    padded = np.pad(x, widths)
    keep = tuple(slice(max(-a, 0), padded.shape[2 + i] - max(-b, 0))
                 for i, (a, b) in enumerate(zip(left, right)))
    return padded[(..., *keep)]


def transpose_edge_padding(kernel_size: int, padding: int, output_padding: int,
                           dilation: int) -> tuple[int, int]:
    """Zeros left and right of the zero-inserted input: d*(k-1)-p, and that + output_padding."""
    left = dilation * (kernel_size - 1) - padding
    return left, left + output_padding


def zero_insert_and_pad(x, kernel_size: IntOrInts, stride: IntOrInts = 1,
                        padding: IntOrInts = 0, output_padding: IntOrInts = 0,
                        dilation: IntOrInts = 1) -> np.ndarray:
    """The input of the stride-1 convolution that equals a transposed convolution."""
    x = np.asarray(x)
    dims = x.ndim - 2
    kernel, padding_, op_, dilation_ = (_ints(v, dims, name) for v, name in (
        (kernel_size, "kernel_size"), (padding, "padding"), (output_padding, "output_padding"),
        (dilation, "dilation")))
    edges = [transpose_edge_padding(k, p, op, d)
             for k, p, op, d in zip(kernel, padding_, op_, dilation_)]
    return pad_or_crop(insert_zeros(x, stride), [e[0] for e in edges], [e[1] for e in edges])


def flip_kernel(weight, groups: int = 1) -> np.ndarray:
    """W'[o, i, j] = W[i, o, k-1-j]: the Conv weight that equals a transposed conv's weight.

    (C_in, C_out/groups, *k) -> (C_out, C_in/groups, *k), reversed along every spatial axis.
    """
    weight = np.asarray(weight)
    c_in, out_per_group, *kernel = weight.shape
    in_per_group = c_in // groups
    swapped = (weight.reshape(groups, in_per_group, out_per_group, *kernel)
               .swapaxes(1, 2).reshape(groups * out_per_group, in_per_group, *kernel))
    return np.flip(swapped, axis=tuple(range(2, swapped.ndim))).copy()


def block_diagonal_weight(weight, groups: int) -> np.ndarray:
    """(A, B/groups, *k) -> (A, B, *k), zero where a channel pair is in different groups.

    Works for both layouts: Conv (out, in/groups, k) and ConvTranspose (in, out/groups, k).
    """
    weight = np.asarray(weight)
    rows, cols_per_group = weight.shape[:2]
    rows_per_group = rows // groups
    dense = np.zeros((rows, cols_per_group * groups, *weight.shape[2:]), dtype=weight.dtype)
    for g in range(groups):
        r, c = g * rows_per_group, g * cols_per_group
        dense[r:r + rows_per_group, c:c + cols_per_group] = weight[r:r + rows_per_group]
    return dense


def conv_matrix(weight, input_length: int, stride: int = 1, padding: int = 0,
                dilation: int = 1, groups: int = 1,
                output_length: int | None = None) -> np.ndarray:
    """The matrix C of a Conv1d: y.ravel() = C @ x.ravel() for one batch item.

    weight is read in Conv1d layout (out, in/groups, k); C has shape (C_out*L_out, C_in*L_in).
    output_length defaults to the Conv1d formula; the matrix view of a transposed conv passes
    the transposed conv's input length instead (they differ when output_padding >= stride).
    """
    dense = block_diagonal_weight(weight, groups)  # (C_out, C_in, k)
    c_out, c_in, kernel = dense.shape
    if output_length is None:
        output_length = conv1d_output_length(input_length, kernel, stride, padding, dilation)
    entries = c_out * output_length * c_in * input_length
    if entries > MAX_MATRIX_ENTRIES:
        raise ConvscopeError(
            f"the matrix view needs a {c_out * output_length} x {c_in * input_length} matrix; "
            "use method='scatter' for inputs this long")
    matrix = np.zeros((output_length, input_length, c_out, c_in), dtype=dense.dtype)
    outputs = np.arange(output_length)
    for j in range(kernel):
        reads = outputs * stride + j * dilation - padding  # input sample tap j reads
        inside = (reads >= 0) & (reads < input_length)
        matrix[outputs[inside], reads[inside]] += dense[:, :, j]
    return matrix.transpose(2, 0, 3, 1).reshape(c_out * output_length, c_in * input_length)


def conv1d_terms(x, weight, stride: int = 1, padding: int = 0, dilation: int = 1,
                 groups: int = 1, n: int = 0, o: int = 0,
                 l: int = 0) -> list[tuple[int, int, float, int, float]]:
    """The products that make y[n, o, l] of a conv1d (bias not included).

    One (input channel i, input position t, x value, tap j, w value) per product; positions
    outside 0..L-1 are padding zeros and are included so the sum reads like the tutorial's.
    """
    x, weight, _ = _as_arrays(x, weight, None)
    length = x.shape[2]
    in_per_group = weight.shape[1]
    group = o // (weight.shape[0] // groups)
    terms = []
    for local_i in range(in_per_group):
        i = group * in_per_group + local_i
        for j in range(weight.shape[2]):
            t = l * stride + j * dilation - padding
            value = float(x[n, i, t]) if 0 <= t < length else 0.0
            terms.append((i, t, value, j, float(weight[o, local_i, j])))
    return terms


def conv1d_sums(x, weight, bias=None, stride: int = 1, padding: int = 0, dilation: int = 1,
                groups: int = 1, n: int = 0) -> Iterator[tuple[int, int, list, float]]:
    """Every output y[n, o, l] of a conv1d as its sum of products: (o, l, terms, value).

    Outputs come channel by channel, l fastest; `terms` is conv1d_terms' list and `value` its
    sum plus bias[o] (no bias when `bias` is None). Lazy, so a caller may stop early.
    """
    length = conv1d_output_length(np.shape(x)[2], np.shape(weight)[2], stride, padding,
                                  dilation)
    for o, l in np.ndindex(np.shape(weight)[0], length):
        terms = conv1d_terms(x, weight, stride, padding, dilation, groups, n, o, l)
        value = sum(xv * wv for _, _, xv, _, wv in terms)
        yield o, l, terms, value + (0.0 if bias is None else float(bias[o]))


def simplified_recipe(x, weight, stride: int = 1, padding: int = 0) -> np.ndarray:
    """The tutorials' three steps for conv_transpose1d, kept to show where they break.

    1. insert stride-1 zeros between input samples, 2. pad k-p-1 zeros at both ends,
    3. run an ordinary stride-1 convolution with the kernel *as stored*.
    It never flips the kernel and has no place for dilation or output_padding, so it matches
    torch only for symmetric kernels with dilation 1 and output_padding 0. Tutorials use one
    channel; for more we swap the channel axes (groups=1) so that the shapes fit at all.
    """
    x, weight, _ = _as_arrays(x, weight, None)
    check_conv_transpose_args(x, weight, None, (stride,), (padding,), (0,), (1,), 1)
    edge = weight.shape[2] - padding - 1
    padded = pad_or_crop(insert_zeros(x, stride), (edge,), (edge,))
    return _conv_nd(padded, weight.swapaxes(0, 1), None, (1,), (0,), (1,), 1)


# ---------------------------------------------------------------------------------------------
# Argument checks: torch's rules, worded with the argument names and values
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def _as_arrays(x, weight, bias) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    def as_float(a):
        a = np.asarray(a)
        return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)

    return as_float(x), as_float(weight), None if bias is None else as_float(bias)


def _ints(value: IntOrInts, dims: int, name: str) -> Ints:
    """An int, or one int per spatial axis, as a tuple of `dims` ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * dims
    try:
        values = tuple(int(v) for v in value)
    except TypeError:
        values = ()
    if len(values) != dims:
        raise ConvscopeError(f"{name} must be an int or {dims} ints, got {name}={value!r}")
    return values


def _dtype(*arrays: np.ndarray) -> np.dtype:
    return np.result_type(*arrays)


def _add_bias(y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    if bias is None:
        return y
    return y + bias.reshape(1, -1, *([1] * (y.ndim - 2)))
