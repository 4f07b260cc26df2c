"""A computed layout for figures made of full-width rows (the layer figures): every margin in
inches from the sizes of the labels that sit in it, measured once, instead of constrained layout.

Why: constrained layout asks every axes for its tight bounding box (tick labels, every
annotation, every line) twice per save, then savefig draws the whole figure once more without
rendering before the real draw; for a layer figure that was ~half of its cost. Here only the
texts that decide a margin are measured (tick labels as the formatter writes them, axis labels,
titles), with the same pads constrained layout uses, so the picture is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.text import Text

PAD = 3 / 72  # inches between neighbours and around the figure: constrained layout's 3 points


@dataclass
class Row:
    """One full-width axes: its height share, and whether its x tick labels and title show."""

    axes: object
    ratio: float
    x_labels: bool = False
    group_gap: bool = False  # a new group starts here (the zoom panel): a wider gap above


class Measure:
    """Text sizes in inches on the figure's own Agg renderer (what savefig draws with)."""

    def __init__(self, figure: Figure):
        self.figure = figure
        self.renderer = figure.canvas.get_renderer()
        self._probe = Text(0, 0, "", figure=figure)  # one Text, re-used: making one is slow
        self._sizes: dict[tuple[str, float | str], tuple[float, float]] = {}

    def text(self, text: str, size: float | str) -> tuple[float, float]:
        """(width, height) of `text` as matplotlib lays it out (lines, line spacing, the
        descent of "lp" as the least a line takes)."""
        if not text:
            return 0.0, 0.0
        key = (text, size)
        if key not in self._sizes:  # tick labels repeat across rows and passes
            self._probe.set_text(text)
            self._probe.set_fontsize(size)
            box = self._probe.get_window_extent(self.renderer)
            self._sizes[key] = (box.width / self.figure.dpi, box.height / self.figure.dpi)
        return self._sizes[key]

    def tick_labels(self, axis) -> tuple[list[str], str]:
        """The labels the axis will draw inside its view interval, and its offset text."""
        low, high = sorted(axis.get_view_interval())
        locs = [loc for loc in axis.get_majorticklocs() if low <= loc <= high]
        formatter = axis.get_major_formatter()
        labels = formatter.format_ticks(locs)
        return labels, formatter.get_offset()

    def y_decoration(self, ax) -> tuple[float, float]:
        """(inches left of the axes: tick marks, tick labels, y label; inches above it for the
        y axis offset text like "1e-5", 0 when there is none)."""
        labels, offset = self.tick_labels(ax.yaxis)
        size = mpl.rcParams["ytick.labelsize"]
        widest = max((self.text(label, size)[0] for label in labels), default=0.0)
        ticks = (mpl.rcParams["ytick.major.size"] + mpl.rcParams["ytick.major.pad"]) / 72
        label = ax.yaxis.label
        label_width = self.text(label.get_text(), label.get_fontsize())[1]  # rotated 90 degrees
        left = ticks + widest + (mpl.rcParams["axes.labelpad"] / 72 + label_width
                                 if label_width else 0.0)
        above = self.text(offset, size)[1] + PAD if offset else 0.0
        return left, above

    def x_decoration(self, ax) -> tuple[float, float]:
        """(inches below the axes: tick marks, tick labels, x label; half the widest tick label,
        what the rightmost one can stick out past the axes)."""
        labels, _ = self.tick_labels(ax.xaxis)
        size = mpl.rcParams["xtick.labelsize"]
        sizes = [self.text(label, size) for label in labels]
        ticks = (mpl.rcParams["xtick.major.size"] + mpl.rcParams["xtick.major.pad"]) / 72
        label = ax.xaxis.label
        label_height = self.text(label.get_text(), label.get_fontsize())[1]
        below = ticks + max((h for _, h in sizes), default=0.0) + (
            mpl.rcParams["axes.labelpad"] / 72 + label_height if label_height else 0.0)
        return below, max((w for w, _ in sizes), default=0.0) / 2

    def title(self, ax) -> float:
        """Inches above the axes its title takes (0 without a title)."""
        title = ax.title
        if not title.get_text():
            return 0.0
        return mpl.rcParams["axes.titlepad"] / 72 + self.text(title.get_text(),
                                                              title.get_fontsize())[1]


def place_rows(figure: Figure, rows: list[Row], suptitle: str, suptitle_size: float) -> None:
    """Put `rows` one under the other across the figure, heights in proportion to their ratios,
    with every margin and gap as wide as what sits in it; then the figure title on top. Call
    it after everything is drawn on the axes (limits and labels decide the margins). Twice:
    the tick locator picks its ticks for the axes' size, so the second pass measures the tick
    labels the placed axes will draw."""
    measure = Measure(figure)
    for _ in range(2):
        _place_rows(figure, measure, rows, suptitle, suptitle_size)
    figure.suptitle(suptitle, fontsize=suptitle_size, y=1 - PAD / figure.get_size_inches()[1],
                    va="top")


def _place_rows(figure: Figure, measure: Measure, rows: list[Row], suptitle: str,
                suptitle_size: float) -> None:
    width, height = figure.get_size_inches()
    for row in rows:  # autoscale now: tick labels follow the limits
        row.axes.get_xlim(), row.axes.get_ylim()
    y_sides = [measure.y_decoration(row.axes) for row in rows]
    x_sides = [measure.x_decoration(row.axes) if row.x_labels else (0.0, 0.0) for row in rows]
    left = PAD + max(side for side, _ in y_sides)
    right = PAD + max(overhang for _, overhang in x_sides)
    suptitle_height = measure.text(suptitle, suptitle_size)[1] + 2 * PAD
    gaps = []  # inches above each row, then below the last
    for i, row in enumerate(rows):
        above = measure.title(row.axes) + y_sides[i][1]
        below_previous = x_sides[i - 1][0] if i else 0.0
        gap = below_previous + above + (2 * PAD if row.group_gap else PAD)
        gaps.append(suptitle_height + above if i == 0 else gap)
    bottom = x_sides[-1][0] + PAD
    free = height - sum(gaps) - bottom
    unit = free / sum(row.ratio for row in rows)
    top = height
    for row, gap in zip(rows, gaps):
        top -= gap
        row_height = row.ratio * unit
        row.axes.set_position([left / width, (top - row_height) / height,
                               (width - left - right) / width, row_height / height])
        top -= row_height


def place_columns(figure: Figure, panels: list, colorbar_axes=None,
                  colorbar_fraction: float = 0.03, colorbar_pad: float = 0.05) -> None:
    """Put `panels` side by side, equal widths, y labels on the first only, then the colour
    bar's axes at the right (its width and pad as fractions of the panels' span, as
    `Figure.colorbar(fraction=, pad=)` takes them); every margin from what sits in it. Twice,
    as place_rows."""
    measure = Measure(figure)
    for _ in range(2):
        _place_columns(figure, measure, panels, colorbar_axes, colorbar_fraction, colorbar_pad)


def _place_columns(figure: Figure, measure: Measure, panels: list, colorbar_axes,
                   colorbar_fraction: float, colorbar_pad: float) -> None:
    width, height = figure.get_size_inches()
    for ax in panels:
        ax.get_xlim(), ax.get_ylim()
    ticks = (mpl.rcParams["ytick.major.size"] + mpl.rcParams["ytick.major.pad"]) / 72
    left = PAD + measure.y_decoration(panels[0])[0]
    below, overhang = max(measure.x_decoration(ax) for ax in panels)
    top = PAD + max(measure.title(ax) for ax in panels)
    bottom = PAD + below
    gap = 2 * overhang + 2 * PAD + mpl.rcParams["ytick.major.size"] / 72
    right = PAD + overhang
    if colorbar_axes is not None:
        # the colour bar's ticks, tick labels and label stick out on its right
        right = PAD + max(ticks, measure.y_decoration(colorbar_axes)[0])
    span = width - left - right
    if colorbar_axes is not None:  # span = panels (s) + pad + bar, both fractions of s
        span /= 1 + colorbar_fraction + colorbar_pad
    panel = (span - gap * (len(panels) - 1)) / len(panels)
    for i, ax in enumerate(panels):
        x = left + i * (panel + gap)
        ax.set_position([x / width, bottom / height, panel / width, (height - top - bottom)
                         / height])
    if colorbar_axes is not None:
        x = left + span * (1 + colorbar_pad)
        colorbar_axes.set_position([x / width, bottom / height, span * colorbar_fraction / width,
                                    (height - top - bottom) / height])
