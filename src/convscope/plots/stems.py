"""The zoom panel drawn: a layer's input samples and its outputs as stems on one time axis
(two rows sharing it, so the two amplitude scales stay honest), with the zeros a transposed conv
inserts as hollow markers and each output's tap count written by its stem (plots.zoom)."""

from __future__ import annotations

import numpy as np

from convscope.plots.zoom import ZoomData

MAX_ANNOTATED = 120  # tap counts written beside at most this many output stems


def draw_zoom(ax_in, ax_out, zoom: ZoomData, input_label: str, output_label: str) -> None:
    """Input stems (and inserted zeros) on ax_in, output stems with tap counts on ax_out; both
    axes share x (milliseconds from the segment start)."""
    in_ms, out_ms = zoom.input_times * 1000, zoom.output_times * 1000
    _stems(ax_in, in_ms, zoom.input_values, "tab:gray", "input samples")
    if len(zoom.zero_times):
        ax_in.plot(zoom.zero_times * 1000, np.zeros(len(zoom.zero_times)), "o", markersize=4.5,
                   markerfacecolor="white", markeredgecolor="tab:red", linestyle="none",
                   label=f"zeros inserted (stride {zoom.geometry.stride})", zorder=3)
    _stems(ax_out, out_ms, zoom.output_values, "tab:blue", "output samples")
    for ax in (ax_in, ax_out):  # the input sample times through both rows: one time axis
        ax.vlines(in_ms, 0, 1, transform=ax.get_xaxis_transform(), color="tab:gray",
                  linewidth=0.4, alpha=0.35, zorder=0)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.margins(x=0.01, y=0.3)  # room for the counts and markers inside the frame
        ax.grid(axis="y", alpha=0.3)
    if zoom.reads is not None:
        _mark_reads(ax_in, ax_out, zoom)
    if zoom.taps is not None:
        _write_taps(ax_out, out_ms, zoom)
    ax_in.set_ylabel(f"{input_label}\n(amplitude)", fontsize=8)
    ax_out.set_ylabel(f"{output_label}\n(amplitude)", fontsize=8)
    ax_out.set_xlabel("time (ms from the segment start)")
    ax_in.set_title(zoom_title(zoom), fontsize=9)
    ax_in.legend(loc="upper right", fontsize=7, ncol=3)
    ax_out.legend(loc="upper right", fontsize=7, ncol=2)


def zoom_title(zoom: ZoomData) -> str:
    w = zoom.window
    span = (f"the first {w.output_stop - w.output_start} of their span" if w.outputs_cut
            else "the same span of time")
    head = (f"zoom: input samples {w.input_start}-{w.input_stop - 1} and outputs "
            f"{w.output_start}-{w.output_stop - 1}, {span}")
    g = zoom.geometry
    if g is None:
        return head
    if g.transposed:
        return (head + f"; k={g.kernel_size}, stride {g.stride}, padding {g.padding}"
                + (f", dilation {g.dilation}" if g.dilation > 1 else "")
                + ": numbers = input samples each output sums")
    return (head + f"; k={g.kernel_size}, stride {g.stride}, padding {g.padding}"
            + (f", dilation {g.dilation}" if g.dilation > 1 else "")
            + ": numbers = taps that meet a real input (not padding)")


def _stems(ax, times: np.ndarray, values: np.ndarray, color: str, label: str) -> None:
    if not len(times):
        return
    ax.vlines(times, 0, values, color=color, linewidth=1.0)
    ax.plot(times, values, "o", color=color, markersize=3.5, linestyle="none", label=label)


def _write_taps(ax, out_ms: np.ndarray, zoom: ZoomData) -> None:
    if len(out_ms) > MAX_ANNOTATED:
        ax.text(0.01, 0.97, f"{len(out_ms)} outputs: too many to number (plots.zoom_samples)",
                transform=ax.transAxes, fontsize=7, va="top")
        return
    for t, value, count in zip(out_ms, zoom.output_values, zoom.taps):
        below = value < 0
        ax.annotate(str(int(count)), (t, value), xytext=(0, -9 if below else 4),
                    textcoords="offset points", ha="center", va="top" if below else "bottom",
                    fontsize=7, color="tab:purple")


def _mark_reads(ax_in, ax_out, zoom: ZoomData) -> None:
    """Conv1d: the inputs one output (mid-window) reads, and that output, in red."""
    output, inputs = zoom.reads
    if not len(inputs):
        return
    first = zoom.window.input_start
    times = zoom.input_times[inputs - first] * 1000
    ax_in.plot(times, zoom.input_values[inputs - first], "o", color="tab:red", markersize=5,
               linestyle="none", label=f"inputs output {output} reads")
    position = output - zoom.window.output_start
    ax_out.plot([zoom.output_times[position] * 1000], [zoom.output_values[position]], "o",
                color="tab:red", markersize=5, linestyle="none", label=f"output {output}")
