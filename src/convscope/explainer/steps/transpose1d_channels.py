"""ConvTranspose1d with several channels, step by step: the scatter per output channel, the check.

Input sample x[i,l] adds a weighted copy of w[i,o] (its channel's kernel for output channel o) to
every output channel o; in each output channel the copies from all input channels add up, plus
b[o]. That is the one-channel scatter with more rows, so it is shown in full. The other views of
the one-channel walkthrough (zero insertion, the matrix C^T, the shortcut) are the same arithmetic
on bigger tables; rather than print those tables the walkthrough says they are one-channel only.
"""

from __future__ import annotations

import numpy as np

from convscope.explainer import reference as ref
from convscope.explainer.examples import TRANSPOSE1D, Example, Layer, close, given
from convscope.explainer.steps.common import layer_header, length_formulas
from convscope.explainer.steps.transpose1d import _torch_output, crop_note, scatter_canvas
from convscope.text import cells, fmt_number, fmt_tensor, fmt_vector, indent, table

MAX_ROWS = 32  # scatter rows per output channel (C_in * L): beyond that, shapes only
MAX_OUT_CHANNELS = 4


def fits(layer: Layer, x: np.ndarray) -> bool:
    """One batch item, one group and small enough to print every scatter row."""
    return (layer.kind == TRANSPOSE1D and layer.groups == 1 and x.shape[0] == 1
            and x.shape[1] * x.shape[2] <= MAX_ROWS and layer.out_channels <= MAX_OUT_CHANNELS)


def transpose1d_channels_walkthrough(x: np.ndarray, layer: Layer,
                                     example: Example | None = None) -> list[str]:
    w = layer.weight.array()
    b = None if layer.bias is None else layer.bias.array()
    lines = layer_header(layer)
    lines.append("  x[i] is input channel i, y[o] output channel o, w[i,o] the kernel from "
                 "input channel i to output channel o")
    lines += [f"  x[{i}] = {fmt_vector(x[0, i])}" for i in range(x.shape[1])]
    lines += [f"  w[{i},{o}] = {fmt_vector(w[i, o])}" for i, o in np.ndindex(*w.shape[:2])]
    if b is not None:
        lines.append(f"  b = {fmt_vector(b)}")
    lines += length_formulas(layer, x.shape) + [""]
    lines += scatter_step(x, w, b, layer) + [""]
    lines += methods_step(x, layer, example) + [""]
    lines += one_channel_note()
    return lines


def scatter_step(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, layer: Layer) -> list[str]:
    s, d = layer.stride, layer.dilation
    spacing = f"stride={s} apart" + (f", the taps {d} apart (dilation={d})" if d > 1 else "")
    lines = ["1. Scatter: each input sample x[i,l] adds a weighted copy of w[i,o] to every "
             f"output channel o, the copies {spacing};",
             "   in each output channel the copies from all input channels add up"
             + (" (plus b[o])." if b is not None else ".")]
    for o in range(w.shape[1]):
        canvases = [scatter_canvas(x[:, i:i + 1], one_pair(layer, w, i, o))
                    for i in range(x.shape[1])]
        body = []
        for i, canvas in enumerate(canvases):
            body += [(f"x[{i},{l}]={fmt_number(x[0, i, l])} × w[{i},{o}]",
                      cells(canvas.rows[l], canvas.reached[l]))
                     for l in range(canvas.rows.shape[0])]
        total = sum(canvas.total for canvas in canvases) + (0.0 if b is None else b[o])
        kept = canvases[0].kept
        body.append(("sum" if b is None else f"sum + b[{o}]", cells(total)))
        body.append((f"y[{o}]", [fmt_number(v) if k else "" for v, k in zip(total, kept)]))
        labels = [str(u - canvases[0].padding) for u in range(len(total))]
        lines.append(f"   Output channel {o}:")
        lines += ["     " + line for line in table(labels, body)]
    lines.append("   " + crop_note(layer.padding, layer.output_padding))
    return lines


def one_pair(layer: Layer, w: np.ndarray, i: int, o: int) -> Layer:
    """Input channel i -> output channel o alone, without bias: one part of the sum."""
    kernel = w[i:i + 1, o:o + 1]
    return Layer(TRANSPOSE1D, given(kernel, kernel.shape), None, layer.stride, layer.padding,
                 layer.output_padding, layer.dilation)


def methods_step(x: np.ndarray, layer: Layer, example: Example | None) -> list[str]:
    results = [(name.replace("_", " "), layer.reference(x, name))
               for name in ref.TRANSPOSE_METHODS_1D]
    results.append(("torch", _torch_output(layer, x)))
    if example is not None and example.expected is not None:
        results.append(("tutorial", example.expected.array()))
    same = all(close(values, results[0][1]) for _, values in results)
    width = max(len(name) for name, _ in results)
    lines = [f"2. All agree: {'yes ✓' if same else 'NO ✗'}  (y, one row per output channel)"]
    lines += [f"   {name:<{width}}  {indent(fmt_tensor(values), ' ' * (width + 5))}"
              for name, values in results]
    return lines


def one_channel_note() -> list[str]:
    return ["Shown for one input and one output channel only (give a one-channel input, e.g. "
            "input=[1,2,3] weight=[1,0,-1]):",
            "  zero insertion, whose kernel here also swaps the channel axes, "
            "W'[o,i,j] = W[i,o,k-1-j]; the matrix C^T; the tutorials' shortcut;",
            "  and scatter.png (when written) draws input channel 0 -> output channel 0 only."]
