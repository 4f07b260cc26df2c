"""ConvTranspose1d on one channel, step by step: scatter, zero insertion, matrix, shortcut."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import numpy as np
import torch

from convscope.errors import ConvscopeError
from convscope.explainer import reference as ref
from convscope.explainer.examples import CONV1D, Example, Layer, close
from convscope.explainer.steps.common import (
    MAX_LINES_PER_STEP,
    as_sentence,
    layer_header,
    length_formulas,
)
from convscope.stack.lengths import conv1d_output_length, conv_transpose1d_output_length
from convscope.text import BLANK, cells, fmt_number, fmt_operand, fmt_vector, grid_lines, table


def transpose1d_walkthrough(x: np.ndarray, layer: Layer,
                            example: Example | None = None) -> list[str]:
    w = layer.weight.array()
    b = None if layer.bias is None else float(layer.bias.array()[0])
    output = layer.reference(x)
    lines = layer_header(layer)
    lines += [f"  x = {fmt_vector(x)}", f"  w = {fmt_vector(w)}"
              + ("" if b is None else f", b = {fmt_number(b)}")]
    lines += length_formulas(layer, x.shape) + [""]
    lines += scatter_step(x, b, layer) + [""]
    lines += zero_insert_step(x, w, b, layer) + [""]
    lines += matrix_step(x, w, b, layer) + [""]
    lines += methods_step(x, layer, example) + [""]
    lines += shortcut_step(x, w, layer, output)
    return lines


@dataclass(frozen=True)
class ScatterCanvas:
    """The scatter view of a one-channel ConvTranspose1d, as a table: rows[l] is x[l]·w placed
    where it lands; total is their column sums (plus bias); columns with kept=False are cut by
    padding. Column u is output index u - padding."""

    rows: np.ndarray
    reached: np.ndarray  # False where a copy does not reach (unlike a weight that is 0)
    total: np.ndarray
    kept: np.ndarray
    padding: int


def scatter_canvas(x: np.ndarray, layer: Layer) -> ScatterCanvas:
    w = layer.weight.array()
    s, p, op, d = layer.stride, layer.padding, layer.output_padding, layer.dilation
    rows = ref.scatter_rows(x, w, s, p, op, d, crop=False)[0, 0, :, 0, :]
    reached = ref.scatter_rows(np.ones_like(x), np.ones_like(w), s, p, op, d,
                               crop=False)[0, 0, :, 0, :] != 0
    # The canvas ends in output_padding extra columns; keep only those that end up in y.
    out_len = conv_transpose1d_output_length(x.shape[2], w.shape[2], s, p, op, d)
    shown = rows.shape[1] - op + max(op - p, 0)
    rows, reached = rows[:, :shown], reached[:, :shown]
    bias = 0.0 if layer.bias is None else float(layer.bias.array()[0])
    kept = (np.arange(shown) >= p) & (np.arange(shown) < p + out_len)
    return ScatterCanvas(rows, reached, rows.sum(axis=0) + bias, kept, p)


def scatter_step(x: np.ndarray, b: float | None, layer: Layer) -> list[str]:
    s, d = layer.stride, layer.dilation
    canvas = scatter_canvas(x, layer)
    body = [(f"x[{l}]={fmt_number(x[0, 0, l])} × w", cells(canvas.rows[l], canvas.reached[l]))
            for l in range(canvas.rows.shape[0])]
    body.append(("sum" if b is None else "sum + b", cells(canvas.total)))
    body.append(("y", [fmt_number(v) if k else "" for v, k in zip(canvas.total, canvas.kept)]))
    spacing = f"stride={s} apart" + (f", the taps {d} apart (dilation={d})" if d > 1 else "")
    lines = ["1. Scatter: each input sample adds a weighted copy of w to the output, "
             f"the copies {spacing};", "   overlapping contributions add up."]
    labels = [str(u - canvas.padding) for u in range(len(canvas.total))]
    lines += ["   " + line for line in table(labels, body)]
    lines.append("   " + crop_note(layer.padding, layer.output_padding))
    return lines


def crop_note(padding: int, output_padding: int) -> str:
    """Why y is a slice of the sum: padding and output_padding act on the output side."""
    if not padding and not output_padding:
        return "No padding: y is the whole sum."
    notes = []
    if padding:
        notes.append(f"padding={padding} cuts {padding} position{'s' * (padding > 1)} "
                     "from each end of the sum")
    if output_padding:
        notes.append(f"output_padding={output_padding} adds {output_padding} "
                     f"position{'s' * (output_padding > 1)} at the right end only")
    return as_sentence(notes)


def zero_insert_step(x: np.ndarray, w: np.ndarray, b: float | None, layer: Layer) -> list[str]:
    s, p, op, d = layer.stride, layer.padding, layer.output_padding, layer.dilation
    k = w.shape[2]
    left, right = ref.transpose_edge_padding(k, p, op, d)
    padded = ref.zero_insert_and_pad(x, k, s, p, op, d)
    flipped = ref.flip_kernel(w)
    inserted = (f"insert stride-1 = {s - 1} zero{'s' * (s > 2)} between samples, none after "
                f"the last: {fmt_vector(ref.insert_zeros(x, s))}" if s > 1
                else "stride=1: no zeros to insert")
    crop = " (negative: crop)" if min(left, right) < 0 else ""
    lines = ["2. Zero insertion: the same y from an ordinary stride-1 convolution.",
             f"   {inserted}",
             f"   pad d*(k-1)-p = {d}*({k}-1)-{p} = {left} on the left and "
             f"d*(k-1)-p+output_padding = {left}+{op} = {right} on the right{crop}:",
             f"     {fmt_vector(padded)}",
             f"   flip the kernel, W'[o,i,j] = W[i,o,k-1-j]: w' = {fmt_vector(flipped)}"]
    if d > 1:
        lines.append(f"   dilation={d}: the taps of w' read inputs {d} apart, "
                     f"as if w' were {fmt_vector(spread_kernel(flipped[0, 0], d))}")
    lines.append("   slide w' along the padded input, one position at a time:")
    lines += ["     " + line for line in
              sum_of_products_lines(padded, flipped, b, stride=1, padding=0, dilation=d)]
    return lines


def spread_kernel(kernel: np.ndarray, dilation: int) -> np.ndarray:
    """[w1,w2,w3] with dilation 2 -> [w1,0,w2,0,w3]: what the dilated taps amount to."""
    spread = np.zeros(dilation * (len(kernel) - 1) + 1)
    spread[::dilation] = kernel
    return spread


def sum_of_products_lines(x: np.ndarray, w: np.ndarray, b: float | None, stride: int,
                          padding: int, dilation: int) -> list[str]:
    """y[l] = 1·1 + 0·2 + ... = value for each output of a one-channel convolution."""
    length = conv1d_output_length(x.shape[2], w.shape[2], stride, padding, dilation)
    lines = []
    sums = ref.conv1d_sums(x, w, None if b is None else (b,), stride, padding, dilation)
    for _, l, terms, value in islice(sums, MAX_LINES_PER_STEP):
        products = " + ".join(f"{fmt_operand(xv)}·{fmt_operand(wv)}"
                              for _, _, xv, _, wv in terms)
        bias = "" if b is None else f" + {fmt_operand(b)}"
        lines.append(f"y[{l}] = {products}{bias} = {fmt_number(value)}")
    if length > MAX_LINES_PER_STEP:
        lines.append(f"... and {length - MAX_LINES_PER_STEP} more outputs the same way")
    return lines


def matrix_step(x: np.ndarray, w: np.ndarray, b: float | None, layer: Layer) -> list[str]:
    s, p, op, d = layer.stride, layer.padding, layer.output_padding, layer.dilation
    length, k = x.shape[2], w.shape[2]
    out_len = conv_transpose1d_output_length(length, k, s, p, op, d)
    matrix = ref.conv_matrix(w, out_len, s, p, d, output_length=length)
    band = ref.conv_matrix(np.ones_like(w), out_len, s, p, d, output_length=length) != 0
    conv = Layer(CONV1D, layer.weight, stride=s, padding=p, dilation=d).describe()
    conv = conv.replace(", bias=False", "")
    y = matrix.T @ x[0, 0] + (b or 0.0)
    lines = [f"3. Matrix: the matching {conv} takes length {out_len} to length {length} "
             "as y = C x.",
             f"   C ({length} x {out_len}), row l = the inputs output l reads "
             f"({BLANK} = never read):"]
    if out_len > 40:
        return lines[:1] + [f"   (C is {length} x {out_len}: too wide to print; "
                            f"C^T x = {fmt_vector(y)})"]
    lines += ["     " + line for line in grid_lines(matrix, band)]
    lines.append(f"   ConvTranspose1d multiplies by the transpose, y = C^T x "
                 f"({out_len} x {length} times {length} values):")
    lines += ["     " + line for line in matrix_times_vector(matrix.T, band.T, x[0, 0], y, b)]
    return lines


def matrix_times_vector(matrix: np.ndarray, reached: np.ndarray, x: np.ndarray, y: np.ndarray,
                        b: float | None) -> list[str]:
    """C^T  ×  x  (+ b)  =  y, laid out as columns with the operators level with x's middle."""
    rows = grid_lines(matrix, reached)
    xs = [fmt_number(v) for v in x] + [""] * (len(rows) - len(x))
    ys = [fmt_number(v) for v in y]
    bias = "" if b is None else f"+ {fmt_operand(b)}  "
    x_width, y_width = max(len(v) for v in xs + ["x"]), max(len(v) for v in ys + ["y"])
    middle = (len(x) - 1) // 2
    blank_bias = " " * len(bias)
    lines = [f"{'C^T':<{len(rows[0])}}     {'x':>{x_width}}  {blank_bias}   {'y':>{y_width}}"]
    for r, row in enumerate(rows):
        times, plus, equals = ("×", bias, "=") if r == middle else (" ", blank_bias, " ")
        lines.append(f"{row}  {times}  {xs[r]:>{x_width}}  {plus}{equals}  {ys[r]:>{y_width}}")
    return lines


def methods_step(x: np.ndarray, layer: Layer, example: Example | None) -> list[str]:
    results = [(name.replace("_", " "), layer.reference(x, name))
               for name in ref.TRANSPOSE_METHODS_1D]
    with_torch = results + [("torch", _torch_output(layer, x))]
    if example is not None and example.expected is not None:
        with_torch.append(("tutorial", example.expected.array()))
    same = all(close(values, with_torch[0][1]) for _, values in with_torch)
    width = max(len(name) for name, _ in with_torch)
    lines = [f"4. All agree: {'yes ✓' if same else 'NO ✗'}"]
    lines += [f"   {name:<{width}}  {fmt_vector(values)}" for name, values in with_torch]
    return lines


def _torch_output(layer: Layer, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return layer.torch_module()(torch.from_numpy(x)).numpy()


def shortcut_step(x: np.ndarray, w: np.ndarray, layer: Layer, output: np.ndarray) -> list[str]:
    """What the tutorials' zero insertion + k-p-1 padding recipe gives, and why it differs."""
    k, s, p = w.shape[2], layer.stride, layer.padding
    lines = [f"5. The tutorials' shortcut: insert zeros, pad k-p-1 = {k}-{p}-1 = {k - p - 1} "
             "at both ends, convolve with w as stored (unflipped)."]
    try:
        # The recipe is about where the numbers go; give it the bias so only that differs.
        shortcut = ref.simplified_recipe(x, w, s, p) + (0.0 if layer.bias is None
                                                        else layer.bias.array()[0])
    except ConvscopeError:
        shortcut = None
    pitfalls = shortcut_pitfalls(w[0, 0], layer.dilation, layer.output_padding, p)
    if shortcut is not None and close(shortcut, output):
        reason = ("it agrees here because the kernel is symmetric, dilation is 1 and "
                  "output_padding is 0" if not pitfalls else "it agrees here by coincidence")
        return lines + [f"   It gives {fmt_vector(shortcut)} = y ✓: {reason}."]
    got = "no output at all" if shortcut is None else fmt_vector(shortcut)
    lines.append(f"   It gives {got}, but y = {fmt_vector(output)} ✗, because:")
    pitfalls = pitfalls or ["(no known reason: please report this input)"]
    return lines + [f"   - {pitfall}" for pitfall in pitfalls]


def shortcut_pitfalls(kernel: np.ndarray, dilation: int, output_padding: int,
                      padding: int) -> list[str]:
    """The ways a transposed conv departs from the tutorials' recipe, worded for one kernel."""
    k = len(kernel)
    pitfalls = []
    if not np.allclose(kernel, kernel[::-1]):
        pitfalls.append(f"w = {fmt_vector(kernel)} is not symmetric, and the exact recipe "
                        f"convolves with the flipped kernel {fmt_vector(kernel[::-1])}")
    if dilation != 1:
        pitfalls.append(f"dilation={dilation}: the exact padding is d*(k-1)-p = "
                        f"{dilation * (k - 1) - padding}, not k-p-1 = {k - padding - 1}, "
                        f"and the kernel taps are {dilation} apart")
    if output_padding:
        pitfalls.append(f"output_padding={output_padding}: the exact output has "
                        f"{output_padding} more position{'s' * (output_padding > 1)} at the "
                        "right end only, and the shortcut has no place for it")
    return pitfalls
