"""scatter.gif: the scatter picture once per frame of the animation, assembled by Pillow.

Each frame is the static picture's table (picture.draw_cells: the same canvas, cells and hatching):
the copies placed so far, the newest outlined, the running sum below, and on the closing frame y.
The figure is laid out once and only its cells, numbers, outlines and title change from frame to
frame: every frame has the same size and colour scale (a value keeps its colour while the sum
grows), and a dozen frames cost about as much as two static pictures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from convscope.explainer.animation import Animation, Frame, scatter_animation
from convscope.explainer.examples import Layer
from convscope.explainer.picture import (
    CUT,
    add_title,
    draw_cells,
    new_figure,
    one_channel_slice,
    title_lines,
    title_width,
)
from convscope.explainer.steps.transpose1d import crop_note
from convscope.files import atomic_path
from convscope.text import fmt_number

DPI = 80  # a dozen frames stay a few hundred kB
FRAME_MS = 600
LAST_FRAME_MS = 2500  # time to read y before the loop starts again
COLOURS = 96  # palette per frame: the red-blue ramp plus text, grid and outline
NEWEST = {"fill": False, "edgecolor": "#e08a00", "linewidth": 3.0, "zorder": 5}


def save_animation(layer: Layer, x: np.ndarray, path: Path) -> tuple[Path, Animation]:
    """Animate the first layer of an example on (a slice of) its input; write the GIF."""
    partial = x.shape[:2] != (1, 1) or layer.out_channels > 1
    x, layer, note = one_channel_slice(x, layer)
    animation = scatter_animation(x, layer)
    titles = [frame_title(animation, frame) for frame in animation.frames]
    width = max(title_width(title_lines(layer.describe(), title, note)) for title in titles)
    board = Board(animation, partial, width)
    images = [board.render(frame, title, note) for frame, title in
              zip(animation.frames, titles)]
    write_gif(images, path)
    return Path(path), animation


def frame_title(animation: Animation, frame: Frame) -> str:
    layer, length = animation.layer, len(animation.x)
    if frame.final:
        y = "y = sum + b" if layer.bias is not None else "y"
        return (f"all {length} copies placed, {y} below. "
                + crop_note(layer.padding, layer.output_padding))
    l = frame.newest
    start = l * layer.stride - layer.padding
    taps = f", taps {layer.dilation} apart" if layer.dilation > 1 else ""
    return (f"input {l + 1} of {length}: x[{l}]={fmt_number(animation.x[l])} adds its copy of w "
            f"at output index {l}·{layer.stride} − {layer.padding} = {start}{taps} (outlined)")


class Board:
    """The one figure every frame is drawn on: copies on top, running sum and y below."""

    def __init__(self, animation: Animation, partial: bool, title_inches: float) -> None:
        self.animation = animation
        canvas = animation.canvas
        n_rows, n_cols = canvas.rows.shape
        self.figure: Figure = new_figure(width=max(6.0, 0.45 * n_cols + 2.5, title_inches),
                                         height=0.42 * (n_rows + 2) + 2.2)
        grid = self.figure.add_gridspec(2, 1, height_ratios=[n_rows, 2.2], hspace=0.12)
        self.top, self.bottom = self.figure.add_subplot(grid[0]), self.figure.add_subplot(grid[1])
        limit = colour_limit(animation)
        labels = [f"x[{l}]={fmt_number(v)} · w" for l, v in enumerate(animation.x)]
        columns = [str(u - canvas.padding) for u in range(n_cols)]
        # Drawn with every cell reached so that each has its number; render() hides the rest.
        self.copies = draw_cells(self.top, canvas.rows, canvas.reached, labels, columns,
                                 limit=limit)
        self.sums = draw_cells(self.bottom, self.sum_rows(animation.frames[-1]),
                               np.ones((2, n_cols), bool),
                               ["running sum" + (", ch 0 → 0" if partial else ""),
                                y_label(animation, partial)], columns, limit=limit)
        for u in np.flatnonzero(~canvas.kept):
            for axes in (self.top, self.bottom):
                axes.axvspan(u - 0.5, u + 0.5, **CUT)
        self.top.tick_params(labelbottom=False)
        cut = f"; hatched columns are cut by padding={canvas.padding}" if canvas.padding else ""
        self.bottom.set_xlabel(f"output index{cut}")
        self.laid_out = False

    def sum_rows(self, frame: Frame) -> np.ndarray:
        """The running sum, and under it y: the kept columns plus the bias."""
        animation = self.animation
        y = np.where(animation.canvas.kept, frame.running + animation.bias, 0.0)
        return np.vstack([frame.running, y])

    def render(self, frame: Frame, title: str, note: str) -> Image.Image:
        canvas = self.animation.canvas
        placed = np.arange(canvas.rows.shape[0])[:, None] < frame.placed
        show(self.copies, canvas.rows, canvas.reached & placed)
        reached = (canvas.reached & placed).any(axis=0)
        show(self.sums, self.sum_rows(frame),
             np.vstack([reached | frame.final, canvas.kept & frame.final]))
        outlines = [] if frame.newest is None else self.outline(frame.newest)
        add_title(self.figure, self.animation.layer.describe(), title, note)
        image = pixels(self.figure)
        if not self.laid_out:  # every frame has the same layout: solve it once
            self.figure.set_layout_engine("none")
            self.laid_out = True
        for patch in outlines:
            patch.remove()
        return image

    def outline(self, l: int) -> list[Rectangle]:
        """A box round the newest copy's span, and round each sum cell it just changed."""
        columns = self.animation.landing(l)
        if columns.size == 0:
            return []
        span = columns[-1] - columns[0] + 1
        patches = [self.top.add_patch(Rectangle((columns[0] - 0.5, l - 0.5), span, 1, **NEWEST))]
        patches += [self.bottom.add_patch(Rectangle((u - 0.45, -0.45), 0.9, 0.9, **NEWEST))
                    for u in columns]
        return patches


def show(cells, values: np.ndarray, shown: np.ndarray) -> None:
    """Set a table drawn by draw_cells to `values`, blank (white) where `shown` is False."""
    image, texts = cells
    image.set_data(np.ma.masked_array(values, ~shown))
    for (r, c), label in texts.items():
        label.set_text(fmt_number(values[r, c], 2))
        label.set_visible(bool(shown[r, c]))


def colour_limit(animation: Animation) -> float:
    """The largest magnitude any frame shows: copies, running sums and y."""
    values = [np.abs(animation.canvas.rows).max(), np.abs(animation.output).max(initial=0.0)]
    values += [np.abs(frame.running).max() for frame in animation.frames]
    return float(max(values))


def y_label(animation: Animation, partial: bool) -> str:
    if partial:
        return "y share, ch 0 → 0"
    return "y" if animation.layer.bias is None else "y = sum + b"


def pixels(figure: Figure) -> Image.Image:
    """The figure's pixels as a palette image (what a GIF frame holds)."""
    figure.set_dpi(DPI)
    figure.canvas.draw()
    rgb = Image.fromarray(np.asarray(figure.canvas.buffer_rgba())).convert("RGB")
    return rgb.quantize(COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def write_gif(images: list[Image.Image], path: Path) -> None:
    """Every frame FRAME_MS, the closing one LAST_FRAME_MS, looping; written atomically."""
    durations = [FRAME_MS] * (len(images) - 1) + [LAST_FRAME_MS]
    with atomic_path(Path(path)) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=durations, loop=0, disposal=1)
