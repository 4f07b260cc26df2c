"""The chunk debugger's outputs: the console report, chunks.json and plots/chunk_errors.png."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from convscope.board.export import export_tree
from convscope.config.schema import ChunksConfig, RunConfig
from convscope.files import write_json
from convscope.chunk_debugger.debug import debug_chunks
from convscope.chunk_debugger.findings import ChunkReport, ErrorSize
from convscope.rundir import RunDir
from convscope.stack.rates import rate_text

log = logging.getLogger("convscope")
BOUNDARIES_LISTED = 5  # the console lists the first few boundaries; chunks.json has them all


def run_chunk_debugger(cfg: RunConfig, chunks: ChunksConfig, out_dir: Path,
                       base_dir: Path) -> ChunkReport:
    """scripts/chunks.py's job: the report logged, chunks.json and the plot in the run dir."""
    report = debug_chunks(cfg, chunks, base_dir)
    files = RunDir(out_dir)
    log.info("%s", report_text(report, cfg.model.name))
    write_json(files.chunks_json, report.as_json())
    written = [files.chunks_json]
    if cfg.plots.enabled:
        from convscope.plots.chunks import plot_chunk_errors  # matplotlib: plots only

        channel = int(np.argmax(np.max(np.abs(_diff(report)), axis=-1)))
        rate = float(report.output_rate)
        plot_chunk_errors(
            files.chunk_errors_plot, report.exact[channel], report.naive[channel],
            report.boundary_samples[: chunks.plot_boundaries], rate,
            _half_window(report, chunks.plot_window_ms),
            f"{cfg.model.name}: {report.chunk_samples}-sample chunks "
            f"({float(report.chunk_samples / report.input_rate):g} s) run on their own vs "
            f"one shot, output channel {channel}", cfg.plots.dpi, cfg.plots.width_inches)
        written.append(files.chunk_errors_plot)
    log.info("wrote %s", ", ".join(str(path) for path in written))
    if cfg.tensorboard:  # the chunk errors figure, as a run's figures (pipeline/jobs.py)
        export_tree(out_dir)
    return report


def _half_window(report: ChunkReport, window_ms: float) -> int:
    """Output samples either side of a boundary in a plot panel: chunks.plot_window_ms, widened
    so the samples a boundary affects fill at most half of it."""
    affected = max(report.affected) if report.affected else 0
    return max(1, round(window_ms / 1000 * float(report.output_rate)), 2 * affected + 4)


def _samples(count: int) -> str:
    return f"{count} sample" if count == 1 else f"{count} samples"


def _diff(report: ChunkReport) -> np.ndarray:
    compared = min(report.exact.shape[-1], report.naive.shape[-1])
    return report.naive[..., :compared] - report.exact[..., :compared]


def _error_text(error: ErrorSize) -> str:
    if error.first is None:
        return f"within the tolerance (max |err| {error.max_abs:.3g})" if error.rms else "no error"
    db = "" if error.db is None else f", {error.db:.1f} dB re signal"
    return f"max |err| {error.max_abs:.3g}, RMS {error.rms:.3g}{db}"


def report_text(report: ChunkReport, model: str) -> str:
    """What the debugger found, in the order a user asks: does it differ, where, how much, and
    which layer is to blame."""
    seconds = float(report.chunk_samples / report.input_rate)
    out_rate = report.output_rate
    lines = [(f"chunk debugger: {model}, {len(report.chunk_outputs)} chunks of "
              f"{report.chunk_samples} stack-input samples ({seconds:g} s at "
              f"{rate_text(report.input_rate)} Hz), each run on its own with no context, vs the "
              "one-shot forward")]
    expected = report.expected_chunk_output
    if report.chunk_outputs[0] != expected:
        lines.append(f"  length: each chunk gives {report.chunk_outputs[0]} output samples, "
                     f"{float(expected):g} expected from the rate: the naive output drifts by "
                     f"{report.chunk_outputs[0] - float(expected):+g} samples per chunk")
    if report.dropped_tail:
        lines.append(f"  the last {report.dropped_tail} input samples are too short for the "
                     "stack on their own and are left out")
    first = report.overall.first
    if first is None:
        lines.append(f"  no difference: every output sample is within {report.tolerance:.3g} "
                     f"of the one-shot output (max |err| {report.overall.max_abs:.3g})")
        return "\n".join(lines)
    nearest = report.nearest_boundary(first)
    where = ""
    if nearest is not None:
        boundary = report.boundary_samples[nearest - 1]
        where = (f", {first - boundary:+d} samples from boundary {nearest} (output sample "
                 f"{boundary}, {float(boundary / out_rate):.4f} s)")
    lines.append(f"  first differing output sample: {first} ({float(first / out_rate):.5f} s at "
                 f"{rate_text(out_rate)} Hz){where}")
    lines.append(f"  error: {_error_text(report.overall)}; {report.overall.differing} samples "
                 f"differ (tolerance {report.tolerance:.3g})")
    if report.affected is not None:
        before, after = report.affected
        left, right = report.stack_context
        lines.append(f"  by the arithmetic, the last {before} output samples before each "
                     f"boundary and the first {after} after it read input across it; exact "
                     f"streaming reads {left} stack-input samples before each chunk and {right} "
                     "after it")
    lines.append("  per boundary (the output nearer to it than to any other):")
    for boundary in report.boundaries[:BOUNDARIES_LISTED]:
        lines.append(f"    boundary {boundary.number} at sample {boundary.sample} "
                     f"({boundary.seconds:.4f} s): {_error_text(boundary.error)}")
    if len(report.boundaries) > BOUNDARIES_LISTED:
        worst = max(report.boundaries, key=lambda b: b.error.rms)
        lines.append(f"    ... {len(report.boundaries) - BOUNDARIES_LISTED} more in chunks.json;"
                     f" the worst is boundary {worst.number}: {_error_text(worst.error)}")
    lines += _layer_lines(report)
    return "\n".join(lines)


def _layer_lines(report: ChunkReport) -> list[str]:
    lines = [("  per layer: the context it needs around a chunk (the naive run gives 0) and "
              "its own error (only that layer chunked, every other layer exact), worst first:")]
    for layer in report.culprits():
        context = layer.context
        need = "context unknown" if context is None else (
            f"needs {_samples(context.left)} of its input before and {context.right} after "
            f"each chunk ({context.left_input} and {context.right_input} stack-input samples)")
        lines.append(f"    {layer.key} ({layer.label}): {need}; {_error_text(layer.error)}")
    fine = [layer.key for layer in report.layers if layer not in report.culprits()]
    if fine:
        lines.append(f"    no shortfall and no error of their own: {', '.join(fine)}")
    if report.no_rule:
        lines.append(f"    (no context arithmetic: {report.no_rule})")
    culprits = report.culprits()
    if culprits:
        worst = culprits[0]
        context = worst.context
        missing = "" if context is None else (
            f": it needs {_samples(context.left)} of its input before each chunk and "
            f"{context.right} after, and gets none")
        others = [layer.key for layer in culprits[1:] if layer.error.differing]
        also = f" ({', '.join(others)} also contribute{'s' if len(others) == 1 else ''})" \
            if others else ""
        lines.append(f"  the clicks come mostly from {worst.key} ({worst.label}){missing}"
                     f"{also}. Fix: give each chunk the stack's context (exact block streaming "
                     "in scripts/run.py does) or carry each layer's state across chunks")
    return lines
