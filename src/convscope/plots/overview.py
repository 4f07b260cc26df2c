"""plots/layers_overview.png: every conv call of a model on one page, however deep.

One row per conv call, in call order: its output's RMS as a bar (dB re 1.0, the level a WAV
calls full scale), the rate it runs at beside it, and a line where the rate changes, so the 78
calls of HiFi-GAN V1 read at a glance: where the level grows or collapses, which stage a call
belongs to, and which calls have a detailed figure (plots.layers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

from matplotlib.figure import Figure

from convscope.config.schema import PlotsConfig
from convscope.plots.figure import new_figure, save_figure
from convscope.plots.signals import rate_label

ROW_INCHES = 0.17
FLOOR_DB = -120.0  # a silent call's bar ends here, not at minus infinity


@dataclass(frozen=True)
class OverviewRow:
    """One conv call as the overview draws it."""

    index: int  # its row in the layer table
    name: str  # ups.0
    label: str  # ConvTranspose1d k16 s8
    rms: float  # of its output, all channels
    rate_in: Optional[Fraction]
    rate_out: Optional[Fraction]
    detailed: bool  # it has its own layer figure

    @property
    def db(self) -> float:
        return max(FLOOR_DB, 20 * math.log10(self.rms)) if self.rms > 0 else FLOOR_DB

    @property
    def changes_rate(self) -> bool:
        return self.rate_in is not None and self.rate_out is not None \
            and self.rate_in != self.rate_out


def plot_leaf_overview(path: Path, rows: list[OverviewRow], title: str,
                       cfg: PlotsConfig) -> Figure:
    """The overview figure (see the module docstring); returns the saved figure."""
    fig = new_figure((cfg.width_inches, 1.6 + ROW_INCHES * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    ys = list(range(len(rows)))
    stages = _stages(rows)
    colours = [f"C{stage % 10}" for stage in stages]
    levels = [row.db for row in rows]
    low = min(levels + [0.0]) - 6
    ax.barh(ys, [level - low for level in levels], left=low, color=colours, height=0.75)
    ax.set_yticks(ys, [f"{row.index:>3}  {row.name}  {row.label}" for row in rows], fontsize=7,
                  family="monospace")
    for tick, row in zip(ax.get_yticklabels(), rows):
        if row.detailed:
            tick.set_fontweight("bold")
    ax.set_ylim(len(rows) - 0.5, -0.5)  # call order from the top
    for y, row in enumerate(rows):
        if row.changes_rate:
            ax.axhline(y - 0.5, color="black", linewidth=0.8)
            ratio = row.rate_out / row.rate_in
            factor = f"x{ratio}" if ratio.denominator == 1 else f"/{1 / ratio}"
            ax.text(1.0, y, f" {factor}: {rate_label(row.rate_in)} -> {rate_label(row.rate_out)}"
                    " Hz", transform=ax.get_yaxis_transform(), fontsize=7, va="center",
                    ha="left", clip_on=False)
    ax.set_xlim(low, max(levels) + 3)
    ax.set_xlabel("output RMS of the call (dB re 1.0)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{title}\n{len(rows)} conv calls in call order; a line marks each rate "
                 "change (right: the factor and the rates); bold rows have their own figure "
                 "(plots.layers)", fontsize=9)
    save_figure(fig, path, cfg.dpi)
    return fig


def _stages(rows: list[OverviewRow]) -> list[int]:
    """A stage number per row: it grows at each rate change (one colour per stage)."""
    stage, found = 0, []
    for row in rows:
        stage += row.changes_rate  # the call that changes the rate runs at the new one
        found.append(stage)
    return found
