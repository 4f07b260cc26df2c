"""The zoom panel's data: a few dozen input samples of one layer and the outputs in the same span
of time, the zeros a transposed conv inserts between its inputs, and how many kernel taps reach
each output. NumPy only (streamed runs capture their zoom windows without matplotlib).

Times: input sample i sits at i / rate_in and output sample o at o / rate_out, seconds from the
start of the segment, as on the full-length panels. For a transposed conv of stride s the
zero-stuffed input (what it convolves with its flipped kernel) has a sample every 1 / rate_out:
the real inputs at i*s, zeros at the s-1 positions between two inputs (hollow markers).

Taps (how many products of input and kernel sum into one output, the zero padding not counted):

    ConvTranspose1d: taps(o) = #{j in [0, k): (o + p - j*d) % s == 0 and
                                               0 <= (o + p - j*d) / s < L_in}
    Conv1d:          taps(o) = #{j in [0, k): 0 <= o*s - p + j*d < L_in}

with p the padding before the first sample (the left padding for Conv1d). On a constant input
with all-ones weights the output *is* this count (conv_transpose1d(ones, ones) = taps); k=5, s=2,
p=2 gives 2, 2, 3, 2, 3, ...: the uneven overlap behind the stride tone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from convscope.plots.envelopes import sample_times

Rate = float | Fraction


@dataclass(frozen=True)
class ConvGeometry:
    """What the tap counts need of a Conv1d or ConvTranspose1d."""

    transposed: bool
    kernel_size: int
    stride: int
    padding: int  # Conv1d: zeros before the first input; ConvTranspose1d: samples cut on the left
    dilation: int = 1


def tap_counts(geometry: ConvGeometry, input_length: int, outputs: np.ndarray) -> np.ndarray:
    """How many kernel taps meet a real input sample for each output index in `outputs`,
    TAP_CHUNK (output, tap) pairs at a time (a 10000-tap kernel over the outputs of a stride of
    5000 made one 2e9-element table)."""
    outputs = np.asarray(outputs, dtype=np.int64)
    rows = max(1, TAP_CHUNK // max(geometry.kernel_size, 1))
    return np.concatenate([_tap_counts(geometry, input_length, outputs[i: i + rows])
                           for i in range(0, len(outputs), rows)] or [np.zeros(0, np.int64)])


def _tap_counts(geometry: ConvGeometry, input_length: int, outputs: np.ndarray) -> np.ndarray:
    o = outputs[:, None]
    j = np.arange(geometry.kernel_size, dtype=np.int64)[None, :]
    k, s, p, d = geometry.kernel_size, geometry.stride, geometry.padding, geometry.dilation
    del k  # the taps are the columns of j
    if geometry.transposed:
        position = o + p - j * d  # where tap j reads the zero-stuffed input
        hits = (position % s == 0) & (position >= 0) & (position < input_length * s)
    else:
        position = o * s - p + j * d  # the input sample tap j reads
        hits = (position >= 0) & (position < input_length)
    return hits.sum(axis=1)


def conv_reads(geometry: ConvGeometry, input_length: int, output: int) -> np.ndarray:
    """The input indices one output reads (Conv1d: one per tap that lands inside the input;
    ConvTranspose1d: the inputs whose kernel copies reach it)."""
    j = np.arange(geometry.kernel_size)
    s, p, d = geometry.stride, geometry.padding, geometry.dilation
    if geometry.transposed:
        position = output + p - j * d
        inputs = position[position % s == 0] // s
    else:
        inputs = output * s - p + j * d
    return np.sort(inputs[(inputs >= 0) & (inputs < input_length)])


MAX_ZOOM_OUTPUTS = 512  # output stems (and inserted zeros) one zoom panel draws at most
TAP_CHUNK = 1 << 22  # (output, tap) pairs tap_counts tests at once


@dataclass(frozen=True)
class ZoomWindow:
    """Input samples [input_start, input_stop) and the outputs [output_start, output_stop) whose
    times fall in the same span."""

    input_start: int
    input_stop: int
    output_start: int
    output_stop: int
    outputs_cut: bool = False  # only the first MAX_ZOOM_OUTPUTS of the inputs' span are shown


def zoom_window(start_seconds: float, samples: int, input_length: int, output_length: int,
                input_rate: Rate, output_rate: Rate) -> ZoomWindow:
    """`samples` input samples from `start_seconds` (moved back so the window fits the input),
    and the outputs at times in [first input's time, first input's time + samples / rate_in)."""
    rate_in, rate_out = Fraction(input_rate), Fraction(output_rate)
    ratio = rate_out / rate_in
    # a large stride fills the panel with few inputs: at most MAX_ZOOM_OUTPUTS stems, which
    # for a stride above that is part of one input sample's span
    samples = max(1, min(samples, input_length, math.floor(MAX_ZOOM_OUTPUTS / ratio)))
    first = min(max(0, round(Fraction(start_seconds) * rate_in)), input_length - samples)
    stop = first + samples
    output_start = min(output_length, math.ceil(first * ratio))
    span_stop = min(output_length, math.ceil(stop * ratio))
    output_stop = min(span_stop, output_start + MAX_ZOOM_OUTPUTS)
    return ZoomWindow(first, stop, output_start, output_stop, output_stop < span_stop)


def auto_zoom_start(x: np.ndarray, rate: Rate, samples: int) -> float:
    """Seconds where a window of `samples` is centred on the loudest sample of x (channels, n)
    (the first one: a constant's window starts at its first sample, where its edge is)."""
    if x.size == 0:
        return 0.0
    loudest = int(np.argmax(np.abs(x).max(axis=0)))
    return float(Fraction(max(0, loudest - samples // 2)) / Fraction(rate))


@dataclass(frozen=True)
class ZoomData:
    """What the zoom panel draws (channel 0 of the layer's input and output)."""

    input_times: np.ndarray
    input_values: np.ndarray
    output_times: np.ndarray
    output_values: np.ndarray
    zero_times: np.ndarray  # transposed convs: the zeros inserted between the inputs
    taps: np.ndarray | None  # per drawn output: taps that meet a real input (convs only)
    reads: tuple[int, np.ndarray] | None  # Conv1d: (output index, input indices it reads)
    window: ZoomWindow
    geometry: ConvGeometry | None

    @property
    def output_indices(self) -> np.ndarray:
        return np.arange(self.window.output_start, self.window.output_stop)


def zoom_data(window: ZoomWindow, inputs: np.ndarray, outputs: np.ndarray, input_rate: Rate,
              output_rate: Rate, input_length: int,
              geometry: ConvGeometry | None = None) -> ZoomData:
    """The panel's stems from the window's input samples and outputs (1-D, channel 0)."""
    in_idx = np.arange(window.input_start, window.input_stop)
    out_idx = np.arange(window.output_start, window.output_stop)
    zeros = np.empty(0)
    taps, reads = None, None
    if geometry is not None:
        taps = tap_counts(geometry, input_length, out_idx)
        if geometry.transposed and geometry.stride > 1:
            s = geometry.stride
            # the inserted zeros between the shown inputs, those within the shown outputs' span
            # only (a stride of 5000 would otherwise draw 5000 stems an input)
            first = window.input_start * s + 1
            last = min((window.input_stop - 1) * s,
                       first - 1 + (window.output_stop - window.output_start) + s)
            gaps = np.arange(first, max(first, last))
            gaps = gaps[gaps % s != 0][:MAX_ZOOM_OUTPUTS]
            zeros = sample_times(gaps, Fraction(input_rate) * s)
        elif not geometry.transposed and len(out_idx):
            middle = int(out_idx[len(out_idx) // 2])
            read = conv_reads(geometry, input_length, middle)
            reads = (middle, read[(read >= window.input_start) & (read < window.input_stop)])
    return ZoomData(sample_times(in_idx, input_rate), np.asarray(inputs, dtype=np.float64),
                    sample_times(out_idx, output_rate), np.asarray(outputs, dtype=np.float64),
                    zeros, taps, reads, window, geometry)
