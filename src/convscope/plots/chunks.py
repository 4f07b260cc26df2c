"""plots/chunk_errors.png: the chunk debugger's exact and naive outputs around the boundaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from convscope.plots.figure import save_figure, subplots


def plot_chunk_errors(path: Path, exact: np.ndarray, naive: np.ndarray, boundaries: list[int],
                      rate: float, half_window: int, title: str, dpi: int,
                      width_inches: float) -> Path:
    """One column per boundary: above, the one-shot output and the chunks' output over
    `half_window` samples either side (the boundary a dashed line); below, their difference.

    `exact` and `naive` are one channel each (naive may be longer or shorter: the overlap is
    drawn); `boundaries` are output sample indices; time is in ms from the segment start.
    """
    compared = min(exact.size, naive.size)
    centres = boundaries or [0]  # one chunk: no boundary, show the start
    figure, axes = subplots(2, len(centres), figsize=(width_inches, 5.5), squeeze=False)
    diff = naive[:compared] - exact[:compared]
    for column, centre in enumerate(centres):
        lo, hi = max(0, centre - half_window), min(compared, centre + half_window)
        t = np.arange(lo, hi) / rate * 1000
        top, bottom = axes[0, column], axes[1, column]
        top.plot(t, exact[lo:hi], color="black", linewidth=1.2, label="one shot (exact)")
        top.plot(t, naive[lo:hi], color="tab:red", linewidth=1.0, linestyle="--",
                 marker=".", markersize=3, label="chunks, no context")
        bottom.plot(t, diff[lo:hi], color="tab:red", linewidth=1.0, marker=".", markersize=3)
        worst = float(np.max(np.abs(diff[lo:hi]))) if hi > lo else 0.0
        for ax in (top, bottom):
            if boundaries:
                ax.axvline(centre / rate * 1000, color="tab:blue", linestyle=":", linewidth=1.2,
                           label="chunk boundary")
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
        name = f"boundary {column + 1}: sample {centre}" if boundaries else "one chunk"
        top.set_title(f"{name} ({centre / rate * 1000:.2f} ms)", fontsize=9)
        bottom.set_title(f"naive - exact (max |err| {worst:.3g})", fontsize=9)
        bottom.set_xlabel("time (ms)", fontsize=8)
    axes[0, 0].set_ylabel("output", fontsize=8)
    axes[1, 0].set_ylabel("difference", fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return save_figure(figure, path, dpi)
