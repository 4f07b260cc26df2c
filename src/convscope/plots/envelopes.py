"""Bounded summaries of signals seen block by block: min/max envelopes and a captured window.

`EnvelopeAccumulator` holds the one binning rule for drawn signals: `minmax_envelope` runs it on a
whole signal in one block, streamed runs feed it block by block, holding only one min and one max
per bin, so plotting an hour of audio costs what plotting a second does. NumPy only: streamed runs
use it without loading matplotlib until the figures are drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


def sample_times(positions: np.ndarray, sample_rate: float | Fraction) -> np.ndarray:
    """Seconds of sample positions (float array) at `sample_rate`: an exact Fraction rate
    (22050/256 Hz) divides as numerator and denominator, so the axis carries no rounded rate
    and NumPy never makes an array of Fraction objects."""
    positions = np.asarray(positions, dtype=np.float64)
    if isinstance(sample_rate, Fraction):
        return positions * sample_rate.denominator / sample_rate.numerator
    return positions / sample_rate


class EnvelopeAccumulator:
    """Per-channel min/max envelope of a signal of known length, fed in order in blocks.

    Signals of at most 2 * max_bins samples are kept as they are; longer ones are cut into bins of
    ceil(length / max_bins) samples (the ragged tail is a bin of its own), each drawn at its centre.
    """

    def __init__(self, channels: int, length: int, sample_rate: float | Fraction, max_bins: int,
                 dtype=np.float32):
        self.length, self.sample_rate = length, sample_rate
        self.keep_all = length <= 2 * max_bins  # short signals are drawn as they are
        self.bin_size = 1 if self.keep_all else math.ceil(length / max_bins)
        n_bins = math.ceil(length / self.bin_size)
        bottom, top = _value_range(np.dtype(dtype))
        self.low = np.full((channels, n_bins), top, dtype=dtype)
        self.high = np.full((channels, n_bins), bottom, dtype=dtype)

    @property
    def duration(self) -> float:
        return float(sample_times(self.length, self.sample_rate))

    def add(self, start: int, block: np.ndarray) -> None:
        """Samples [start, start + n) of every channel: block is (channels, n)."""
        n = block.shape[-1]
        if n == 0:
            return
        first_bin = start // self.bin_size
        # offsets in the block where a new bin begins: the block start, then each bin boundary
        boundaries = np.arange((first_bin + 1) * self.bin_size, start + n, self.bin_size) - start
        starts = np.concatenate(([0], boundaries)).astype(np.intp)
        bins = slice(first_bin, first_bin + len(starts))
        np.minimum(self.low[:, bins], np.minimum.reduceat(block, starts, axis=-1),
                   out=self.low[:, bins])
        np.maximum(self.high[:, bins], np.maximum.reduceat(block, starts, axis=-1),
                   out=self.high[:, bins])

    def envelopes(self) -> list:
        """One Envelope per channel: low is high (one array) for signals kept as they are."""
        if self.keep_all:
            times = sample_times(np.arange(self.length), self.sample_rate)
            return [Envelope(times, row, row, self.duration) for row in self.low]
        n_bins = self.low.shape[-1]
        times = sample_times(np.arange(n_bins) * self.bin_size + self.bin_size / 2,
                             self.sample_rate)
        return [Envelope(times, low, high, self.duration)
                for low, high in zip(self.low, self.high)]


def _value_range(dtype: np.dtype) -> tuple:
    """The lowest and highest value of a dtype: where running maxima and minima start."""
    if dtype.kind == "b":
        return False, True
    if dtype.kind in "iu":
        return np.iinfo(dtype).min, np.iinfo(dtype).max
    return -np.inf, np.inf


class WindowCapture:
    """Keeps samples [first, stop) of some channels (rows of `samples`, in the order given) of a
    signal fed in order in blocks (channels, n)."""

    def __init__(self, channels: list[int], first: int, stop: int):
        self.channels = channels
        self.first, self.stop = first, max(first, stop)
        self.samples = np.zeros((len(channels), self.stop - self.first), dtype=np.float32)

    def add(self, start: int, block: np.ndarray) -> None:
        lo, hi = max(start, self.first), min(start + block.shape[-1], self.stop)
        if hi > lo:
            self.samples[:, lo - self.first: hi - self.first] = \
                block[self.channels, lo - start: hi - start]


@dataclass(frozen=True)
class Envelope:
    """Sample times with the lowest and highest value in each bin (equal when not reduced)."""

    times: np.ndarray
    low: np.ndarray
    high: np.ndarray
    duration: float  # seconds the whole signal lasts (the x-axis span)


def minmax_envelope(x: np.ndarray, sample_rate: float | Fraction, max_bins: int) -> Envelope:
    """The envelope of a whole 1-D signal: EnvelopeAccumulator's binning rule, in one block."""
    x = np.asarray(x)
    accumulator = EnvelopeAccumulator(1, len(x), sample_rate, max_bins, dtype=x.dtype)
    accumulator.add(0, x[None])
    return accumulator.envelopes()[0]
