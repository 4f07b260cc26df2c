"""ConvTranspose2d on one channel, step by step: per-pixel scatter panels and zero insertion."""

from __future__ import annotations

import numpy as np

from convscope.explainer import reference as ref
from convscope.explainer.examples import Layer
from convscope.explainer.steps.common import as_sentence, layer_header, length_formulas
from convscope.text import fmt_number, fmt_tensor, grid_lines, side_by_side


def transpose2d_walkthrough(x: np.ndarray, layer: Layer) -> list[str]:
    w = layer.weight.array()
    output = layer.reference(x)
    lines = layer_header(layer)
    lines += side_by_side([("  x", ["  " + r for r in grid_lines(x[0, 0])]),
                           ("W", grid_lines(w[0, 0]))])
    lines += length_formulas(layer, x.shape) + [""]
    panels = scatter_panels(x, w, layer)
    lines.append("1. Scatter: each input pixel adds x[i,j]·W to the output canvas, "
                 f"stride={layer.stride} apart; the copies add up.")
    total = sum(values for _, values, _ in panels)
    blocks = [(label, grid_lines(values, reached)) for label, values, reached in panels]
    blocks.append(("= sum", grid_lines(total)))
    lines += ["   " + line for line in side_by_side(blocks)]
    lines.append("   " + crop_note_2d(layer))
    lines += ["   y = " + fmt_tensor(output).replace("\n", "\n       "), ""]
    padded = ref.zero_insert_and_pad(x, w.shape[2:], layer.stride, layer.padding,
                                     layer.output_padding, layer.dilation)
    lines.append("2. Zero insertion: insert stride-1 zero rows/columns between pixels, pad "
                 "d*(k-1)-p (+ output_padding at the bottom/right),")
    lines.append("   " + edge_padding_note_2d(layer, w.shape[2:]))
    lines.append("   then slide the flipped kernel W' (rotated 180°) with stride 1:")
    blocks = [("padded input", grid_lines(padded[0, 0])),
              ("W'", grid_lines(ref.flip_kernel(w)[0, 0])),
              ("= y", grid_lines(layer.reference(x, "zero_insert")[0, 0]))]
    lines += ["   " + line for line in side_by_side(blocks)]
    return lines


def edge_padding_note_2d(layer: Layer, kernel: tuple[int, ...]) -> str:
    parts, negative = [], False
    for axis, (name, sides) in enumerate((("rows", "top/bottom"), ("columns", "left/right"))):
        def pick(value):
            return value if isinstance(value, int) else value[axis]
        left, right = ref.transpose_edge_padding(kernel[axis], pick(layer.padding),
                                                 pick(layer.output_padding), pick(layer.dilation))
        parts.append(f"{name} {left}/{right} at the {sides}")
        negative = negative or min(left, right) < 0
    return "here: " + ", ".join(parts) + (" (negative: crop)" if negative else "") + ","


def scatter_panels(x: np.ndarray, w: np.ndarray,
                   layer: Layer) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """One canvas per input pixel: its weighted kernel copy before padding crops the sum."""
    panels = []
    for i, j in np.ndindex(*x.shape[2:]):
        one_hot = np.zeros_like(x)
        one_hot[0, 0, i, j] = 1.0
        # padding 0 keeps the whole canvas; output_padding still adds its rows/columns
        kwargs = dict(stride=layer.stride, output_padding=layer.output_padding,
                      dilation=layer.dilation)
        values = ref.conv_transpose2d(one_hot * x, w, **kwargs)[0, 0]
        reached = ref.conv_transpose2d(one_hot, np.ones_like(w), **kwargs)[0, 0] != 0
        panels.append((f"x[{i},{j}]={fmt_number(x[0, 0, i, j])} × W", values, reached))
    return panels


def crop_note_2d(layer: Layer) -> str:
    padding, output_padding = layer.padding, layer.output_padding
    if padding in (0, (0, 0)) and output_padding in (0, (0, 0)):
        return "No padding: y is the whole sum."
    notes = []
    if padding not in (0, (0, 0)):
        notes.append(f"padding={padding} cuts that many rows/columns from every side of the sum")
    if output_padding not in (0, (0, 0)):
        notes.append(f"output_padding={output_padding} adds rows/columns at the bottom/right "
                     "only (half a ring)")
    return as_sentence(notes)
