"""The views of a convolution the explainer shows: scatter rows, zero insertion and
padding, the flipped kernel, the matrix C, per-output terms, the tutorials' shortcut."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from convscope.errors import ConvscopeError
from convscope.explainer.reference.arrays import (
    IntOrInts,
    Ints,
    _add_bias,
    _as_arrays,
    _dtype,
    _ints,
    to_numpy,
)
from convscope.explainer.reference.checks import check_conv_transpose_args
from convscope.stack.lengths import conv1d_output_length, conv_transpose1d_output_length

MAX_MATRIX_ENTRIES = 20_000_000  # 160 MB of float64: the matrix view is for small examples


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
    x = to_numpy(x)
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
    x = to_numpy(x)
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
    weight = to_numpy(weight)
    c_in, out_per_group, *kernel = weight.shape
    in_per_group = c_in // groups
    swapped = (weight.reshape(groups, in_per_group, out_per_group, *kernel)
               .swapaxes(1, 2).reshape(groups * out_per_group, in_per_group, *kernel))
    return np.flip(swapped, axis=tuple(range(2, swapped.ndim))).copy()


def block_diagonal_weight(weight, groups: int) -> np.ndarray:
    """(A, B/groups, *k) -> (A, B, *k), zero where a channel pair is in different groups.

    Works for both layouts: Conv (out, in/groups, k) and ConvTranspose (in, out/groups, k).
    """
    weight = to_numpy(weight)
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
    x, weight, bias = _as_arrays(x, weight, bias)  # once, not once per output
    length = conv1d_output_length(x.shape[2], weight.shape[2], stride, padding, dilation)
    for o, l in np.ndindex(weight.shape[0], length):
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
