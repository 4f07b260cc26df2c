"""The chunk debugger's console report: does it differ, where, how much, which layer, what overlap."""

from __future__ import annotations

from convscope.chunk_debugger.findings import ChunkReport, ErrorSize, LayerFinding
from convscope.stack.rates import rate_text

BOUNDARIES_LISTED = 5  # the console lists the first few boundaries; chunks.json has them all
LAYERS_LISTED = 8  # and the worst few layers (a deep model has dozens); chunks.json has them all


def _samples(count: int) -> str:
    return f"{count} sample" if count == 1 else f"{count} samples"


def _error_text(error: ErrorSize | None) -> str:
    if error is None:
        return "own error not measurable (its pieces' outputs change its length)"
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
              f"{report.chunk_samples} {report.input_unit} ({seconds:g} s at "
              f"{rate_text(report.input_rate)} Hz), each run on its own with no context, vs the "
              "one-shot forward")]
    expected = report.expected_chunk_output
    if report.chunk_outputs[0] != expected:
        lines.append(f"  length: each chunk gives {report.chunk_outputs[0]} output samples, "
                     f"{float(expected):g} expected from the rate: the naive output drifts by "
                     f"{report.chunk_outputs[0] - float(expected):+g} samples per chunk")
    if report.dropped_tail:
        lines.append(f"  the last {report.dropped_tail} input samples are too short for the "
                     "model on their own and are left out")
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
        lines.append(f"  by the arithmetic, the last {before} output samples before each "
                     f"boundary and the first {after} after it read input across it")
    if report.stack_context is not None:
        lines.append(_overlap_line(report))
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


def _overlap_line(report: ChunkReport) -> str:
    """The overlap that makes chunked output exact, in input samples and ms, and (any model)
    whether running each chunk with it reproduced the one shot."""
    left, right = report.stack_context
    left_ms, right_ms = report.overlap_ms
    line = (f"  exact streaming needs {left} {report.input_unit} ({left_ms:.3g} ms) of context "
            f"before each chunk and {right} ({right_ms:.3g} ms) after it")
    check = report.overlap_check
    if check is not None:
        verdict = "equals the one shot" if check.first is None else "still differs"
        line += (f"; checked: each chunk run with that overlap, cropped, {verdict} (max |err| "
                 f"{check.max_abs:.3g})")
    return line


def _layer_lines(report: ChunkReport) -> list[str]:
    culprits = report.culprits()
    lines = [("  per layer: the context it needs around a chunk (the naive run gives 0) and "
              "its own error (only that layer chunked, every other layer exact), worst first:")]
    for layer in culprits[:LAYERS_LISTED]:
        lines.append(f"    {layer.key} ({layer.label}): {_need(layer, report.input_unit)}; "
                     f"{_error_text(layer.error)}")
    if len(culprits) > LAYERS_LISTED:
        lines.append(f"    ... {len(culprits) - LAYERS_LISTED} more in chunks.json")
    fine = [layer.key for layer in report.layers
            if layer not in culprits and layer.error is not None]
    if fine:
        lines.append(f"    no shortfall and no error of their own: {', '.join(fine)}")
    unknown = [layer.key for layer in report.layers
               if layer not in culprits and layer.error is None]
    if unknown:
        lines.append(f"    not measured (context unknown, and its pieces cannot stand in for its "
                     f"output): {', '.join(unknown)}")
    if report.no_rule:
        lines.append(f"    (no context arithmetic: {report.no_rule})")
    if culprits:
        worst = culprits[0]
        context = worst.context
        missing = "" if context is None else (
            f": it needs {_samples(context.left)} of its input before each chunk and "
            f"{context.right} after, and gets none")
        others = [layer.key for layer in culprits[1:LAYERS_LISTED]
                  if layer.error is not None and layer.error.differing]
        also = f" ({', '.join(others)} also contribute{'s' if len(others) == 1 else ''})" \
            if others else ""
        fix = ("give each chunk the context above (exact block streaming in scripts/run.py "
               "does) or carry each layer's state across chunks" if report.stack_context
               is not None else "carry each layer's state across chunks (no finite overlap "
               "makes this model exact)")
        lines.append(f"  the clicks come mostly from {worst.key} ({worst.label}){missing}"
                     f"{also}. Fix: {fix}")
    return lines


def _need(layer: LayerFinding, unit: str) -> str:
    context = layer.context
    if context is None:
        return "context unknown"
    return (f"needs {_samples(context.left)} of its input before and {context.right} after "
            f"each chunk ({context.left_input} and {context.right_input} {unit})")
