"""plots/chunk_errors.png for a chunk report: the output channel that differs most."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from convscope.chunk_debugger.findings import ChunkReport


def write_chunk_plot(report: ChunkReport, path: Path, model: str, boundaries: int = 3,
                     window_ms: float = 0.5, dpi: int = 100, width_inches: float = 12.0) -> Path:
    """plots/chunk_errors.png: the output channel with the largest error, around the first
    `boundaries` boundaries (chunks.plot_boundaries)."""
    from convscope.plots.chunks import plot_chunk_errors  # matplotlib: plots only

    compared = min(report.exact.shape[-1], report.naive.shape[-1])
    diff = report.naive[..., :compared] - report.exact[..., :compared]
    channel = int(np.argmax(np.max(np.abs(diff), axis=-1)))
    return plot_chunk_errors(
        path, report.exact[channel], report.naive[channel],
        report.boundary_samples[:boundaries], float(report.output_rate),
        _half_window(report, window_ms),
        f"{model}: {report.chunk_samples}-sample chunks "
        f"({float(report.chunk_samples / report.input_rate):g} s) run on their own vs "
        f"one shot, output channel {channel}", dpi, width_inches)


def _half_window(report: ChunkReport, window_ms: float) -> int:
    """Output samples either side of a boundary in a plot panel: chunks.plot_window_ms, widened
    so the samples a boundary affects fill at most half of it, but never past half a chunk (a
    deep model's affected stretch can be longer than the chunk itself)."""
    affected = max(report.affected) if report.affected else 0
    half_chunk = max(1, report.chunk_outputs[0] // 2)
    return max(1, round(window_ms / 1000 * float(report.output_rate)),
               min(2 * affected + 4, half_chunk))
