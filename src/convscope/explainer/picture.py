"""The explainer's picture: every input sample's weighted kernel copy as a row, the sum below.

For a Conv1d the picture is the mirror image: one row per output, holding the products of its
window, with the row's sum on the right. Drawn and saved the way every convscope figure is
(convscope.plots.figure: a Figure on an Agg canvas, written to a temporary name first).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from convscope.explainer import reference as ref
from convscope.explainer.examples import CONV1D, TRANSPOSE1D, Layer, given
from convscope.explainer.steps.transpose1d import scatter_canvas
from convscope.explainer.steps.transpose2d import scatter_panels
from convscope.plots import figure as figures
from convscope.stack.lengths import conv1d_output_length
from convscope.text import fmt_number

MAX_SAMPLES = 12  # bigger inputs are drawn from their first samples (2D: first 2x2 pixels)
MAX_ANNOTATED_COLUMNS = 40
DPI = 110
CUT = dict(facecolor="none", hatch="///", edgecolor="0.55", linewidth=0, zorder=3)


def save_picture(layer: Layer, x: np.ndarray, path: Path) -> Path:
    """Draw the first layer of an example on (a slice of) its input and save it as PNG."""
    partial = x.shape[:2] != (1, 1) or layer.out_channels > 1
    x, layer, note = one_channel_slice(x, layer)
    if layer.kind == TRANSPOSE1D:
        figure = scatter_figure(x, layer, note, partial)
    elif layer.kind == CONV1D:
        figure = window_figure(x, layer, note)
    else:
        figure = scatter_figure_2d(x, layer, note)
    return figures.save_figure(figure, path, DPI)


def one_channel_slice(x: np.ndarray, layer: Layer) -> tuple[np.ndarray, Layer, str]:
    """Batch item 0, channel 0 -> 0 and the first few samples: what fits in one picture."""
    limit = MAX_SAMPLES if x.ndim == 3 else 2
    window = (slice(0, 1), slice(0, 1)) + tuple(slice(0, limit) for _ in x.shape[2:])
    sliced = x[window]
    notes = []
    if sliced.shape[2:] != x.shape[2:]:
        unit = "samples" if x.ndim == 3 else "pixels"
        notes.append(f"first {'x'.join(map(str, sliced.shape[2:]))} of "
                     f"{'x'.join(map(str, x.shape[2:]))} input {unit}")
    bias = None if layer.bias is None else given(layer.bias.array()[:1], (1,))
    if x.shape[:2] != (1, 1) or layer.out_channels > 1:
        # Other input channels add to the same outputs, so the sums shown are partial: no bias.
        notes.append("batch item 0, input channel 0 -> output channel 0 only, without bias")
        bias = None
    weight = layer.weight.array()[0:1, 0:1]
    one = Layer(layer.kind, given(weight, weight.shape), bias, layer.stride, layer.padding,
                layer.output_padding, layer.dilation, groups=1)
    return sliced, one, "; ".join(notes)


def scatter_figure(x: np.ndarray, layer: Layer, note: str, partial: bool = False) -> Figure:
    """`partial`: x and layer are one channel pair of a bigger layer, so the sum is only that
    pair's share of y (other input channels add to the same outputs)."""
    canvas = scatter_canvas(x, layer)
    n_rows, n_cols = canvas.rows.shape
    figure = new_figure(width=max(6.0, 0.45 * n_cols + 2.5), height=0.42 * (n_rows + 1) + 2.2)
    grid = figure.add_gridspec(2, 1, height_ratios=[n_rows, 1.2], hspace=0.12)
    top, bottom = figure.add_subplot(grid[0]), figure.add_subplot(grid[1])
    labels = [f"x[{l}]={fmt_number(v)} · w" for l, v in enumerate(x[0, 0])]
    columns = [str(u - canvas.padding) for u in range(n_cols)]
    draw_cells(top, canvas.rows, canvas.reached, labels, columns)
    total_label = ("sum, channel 0 → 0 only" if partial else
                   "sum = y" if layer.bias is None else "sum + b = y")
    draw_cells(bottom, canvas.total[None, :], np.ones((1, n_cols), bool), [total_label], columns)
    for u in np.flatnonzero(~canvas.kept):
        for axes in (top, bottom):
            axes.axvspan(u - 0.5, u + 0.5, **CUT)
    top.tick_params(labelbottom=False)
    cut = f"; hatched columns are cut by padding={layer.padding}" if layer.padding else ""
    bottom.set_xlabel(f"output index{cut}")
    add_title(figure, layer.describe(),
              "each input sample adds a weighted copy of the kernel (rows); "
              "their sum is the output",
              note)
    return figure


def window_figure(x: np.ndarray, layer: Layer, note: str) -> Figure:
    w = layer.weight.array()
    s, p, d = layer.stride, layer.padding, layer.dilation
    padded = ref.pad_or_crop(x, (p,), (p,))[0, 0]
    n_out = conv1d_output_length(len(padded), w.shape[2], s, 0, d)
    products = np.zeros((n_out, len(padded)))
    reached = np.zeros_like(products, dtype=bool)
    for j in range(w.shape[2]):
        reads = np.arange(n_out) * s + j * d  # padded position tap j reads, per output
        products[np.arange(n_out), reads] = padded[reads] * w[0, 0, j]
        reached[np.arange(n_out), reads] = True
    bias = 0.0 if layer.bias is None else float(layer.bias.array()[0])
    figure = new_figure(width=max(6.0, 0.45 * len(padded) + 3.5), height=0.42 * n_out + 2.6)
    grid = figure.add_gridspec(2, 1, height_ratios=[1.2, n_out], hspace=0.15)
    top, bottom = figure.add_subplot(grid[0]), figure.add_subplot(grid[1])
    columns = [str(t - p) for t in range(len(padded))]
    draw_cells(top, padded[None, :], np.ones((1, len(padded)), bool), ["x"], columns)
    draw_cells(bottom, products, reached, [f"y[{l}]" for l in range(n_out)], columns)
    for l, total in enumerate(products.sum(axis=1) + bias):
        bottom.text(len(padded) - 0.2, l, f"  = {fmt_number(total)}", va="center", ha="left",
                    fontsize=9, clip_on=False)
    for t in [*range(p), *range(len(padded) - p, len(padded))]:
        top.axvspan(t - 0.5, t + 0.5, **CUT)
    top.tick_params(labelbottom=False, labeltop=True)
    plus_b = " + b" if layer.bias is not None else ""
    bottom.set_xlabel("input index" + ("; hatched: padding zeros" if p else ""))
    add_title(figure, layer.describe(),
              f"each output (row) is the sum of its window's products x[t]·w[j]{plus_b}", note)
    return figure


def scatter_figure_2d(x: np.ndarray, layer: Layer, note: str) -> Figure:
    w = layer.weight.array()
    panels = scatter_panels(x, w, layer)
    total = sum(values for _, values, _ in panels)
    output = layer.reference(x)[0, 0]
    shown = panels + [("sum", total, np.ones(total.shape, bool)),
                      ("y", output, np.ones(output.shape, bool))]
    columns = min(len(shown), 6)
    n_grid_rows = -(-len(shown) // columns)
    figure = new_figure(width=2.4 * columns, height=2.5 * n_grid_rows + 1.0)
    padding = _pair(layer.padding)
    if padding != (0, 0):
        shown[-2] = ("sum (box: kept by padding)", total, shown[-2][2])
    if layer.bias is not None:
        shown[-1] = ("y = box + b", output, shown[-1][2])
    for index, (label, values, reached) in enumerate(shown):
        axes = figure.add_subplot(n_grid_rows, columns, index + 1)
        draw_cells(axes, values, reached, [str(r) for r in range(values.shape[0])],
                   [str(c) for c in range(values.shape[1])], aspect="equal", fontsize=8)
        axes.set_title(label, fontsize=9)
        if index == len(shown) - 2 and padding != (0, 0):
            (top, left), (height, width) = padding, output.shape
            axes.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False,
                                     edgecolor="black", linewidth=2.5, zorder=4))
    add_title(figure, layer.describe(),
              "each input pixel adds a weighted copy of the kernel; the sum, cropped by padding, "
              "is y", note)
    return figure


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def draw_cells(axes, values: np.ndarray, reached: np.ndarray, row_labels: list[str],
               column_labels: list[str], aspect: str = "auto", fontsize: int = 9,
               limit: float | None = None) -> tuple[AxesImage, dict[tuple[int, int], Text]]:
    """A table of numbers as coloured cells (red positive, blue negative, white = not reached).

    `limit`: the magnitude of the strongest colour; by default this table's own largest value.
    Returns the image and each reached cell's number, which an animation updates frame by frame
    (with one limit for every frame, so a value keeps its colour)."""
    if limit is None:
        limit = float(np.abs(values[reached]).max()) if reached.any() else 0.0
    limit = limit or 1.0
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="white")
    # Widen the colour range so the strongest cells stay light enough for black text.
    image = axes.imshow(np.ma.masked_array(values, ~reached), cmap=cmap, vmin=-1.7 * limit,
                        vmax=1.7 * limit, aspect=aspect, interpolation="nearest")
    texts = {}
    if values.shape[1] <= MAX_ANNOTATED_COLUMNS:
        for r, c in zip(*np.nonzero(reached)):
            texts[int(r), int(c)] = axes.text(c, r, fmt_number(values[r, c], 2), ha="center",
                                              va="center", fontsize=fontsize)
    axes.set_xticks(range(values.shape[1]), column_labels, fontsize=8)
    axes.set_yticks(range(values.shape[0]), row_labels, fontsize=8)
    axes.set_xticks(np.arange(values.shape[1] + 1) - 0.5, minor=True)
    axes.set_yticks(np.arange(values.shape[0] + 1) - 0.5, minor=True)
    axes.grid(which="minor", color="0.8", linewidth=0.6)
    axes.tick_params(which="minor", length=0)
    return image, texts


def add_title(figure: Figure, *lines: str) -> None:
    """A centred title; the figure widens so that the longest line fits."""
    lines = title_lines(*lines)
    needed = title_width(lines)
    width, height = figure.get_size_inches()
    if needed > width:
        figure.set_size_inches(needed, height)
    figure.suptitle("\n".join(lines), fontsize=10)


def title_lines(*lines: str) -> list[str]:
    """The non-empty lines of a title; a third line (the note) goes in parentheses."""
    lines = [line for line in lines if line]
    if len(lines) > 2:
        lines[2] = f"({lines[2]})"
    return lines


def title_width(lines: list[str]) -> float:
    """Inches the longest title line needs at the title's font size."""
    return 0.085 * max(len(line) for line in lines) + 0.5


def new_figure(width: float, height: float) -> Figure:
    """Sized to its content, within what a page can show; constrained layout fits the titles."""
    return figures.new_figure((min(width, 30.0), min(height, 20.0)), layout="constrained")
