"""The three scipy.signal spectral estimates convscope uses, in NumPy: same frames, windows and
scaling, so the same numbers (tests/test_bench.py compares them with scipy).

Why not scipy.signal itself: importing it pulls in scipy.stats and scipy.sparse, about 1 s of
every run's start-up, more than the whole reference example's computation.
"""

from __future__ import annotations

import numpy as np


def hann(n: int) -> np.ndarray:
    """scipy.signal.get_window('hann', n): the periodic Hann window used for spectra."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def kaiser(n: int, beta: float) -> np.ndarray:
    """scipy.signal.get_window(('kaiser', beta), n): periodic, i.e. n+1 points minus the last."""
    return np.kaiser(n + 1, beta)[:-1]


def _frames(x: np.ndarray, nperseg: int, noverlap: int) -> np.ndarray:
    """Segments as scipy's _fft_helper takes them (no boundary extension, no padding)."""
    step = nperseg - noverlap
    return np.lib.stride_tricks.sliding_window_view(x, nperseg, axis=-1)[..., ::step, :]


def spectrogram_magnitude(x: np.ndarray, fs: float, nperseg: int, noverlap: int
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scipy.signal.spectrogram(x, fs, window='hann', nperseg, noverlap, mode='magnitude'):
    each frame's mean removed, density scaling; returns freqs, times, magnitude (freq, time)."""
    window = hann(nperseg)
    frames = _frames(np.asarray(x), nperseg, noverlap)
    frames = frames - frames.mean(axis=-1, keepdims=True)
    spectrum = np.abs(np.fft.rfft(frames * window, n=nperseg)) * np.sqrt(
        1.0 / (fs * np.sum(window * window)))
    times = np.arange(nperseg / 2, len(x) - nperseg / 2 + 1, nperseg - noverlap) / float(fs)
    return np.fft.rfftfreq(nperseg, 1 / fs), times, spectrum.T


def welch_psd(x: np.ndarray, fs: float, window: np.ndarray, noverlap: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """scipy.signal.welch(x, fs, window, nperseg=len(window), noverlap, detrend=False,
    scaling='density'): one-sided power spectral density, mean over frames."""
    nperseg = len(window)
    frames = _frames(np.asarray(x), nperseg, noverlap)
    power = np.abs(np.fft.rfft(frames * window, n=nperseg)) ** 2 / (fs * np.sum(window ** 2))
    if nperseg % 2:
        power[..., 1:] *= 2
    else:
        power[..., 1:-1] *= 2  # the Nyquist bin has no negative-frequency twin
    return np.fft.rfftfreq(nperseg, 1 / fs), power.mean(axis=-2)


def stft(x: np.ndarray, nperseg: int, noverlap: int) -> np.ndarray:
    """scipy.signal.stft(x, window='hann', nperseg, noverlap, boundary=None, padded=False)[2]:
    spectrum scaling (divided by the window's sum); (freq, time)."""
    window = hann(nperseg)
    frames = _frames(np.asarray(x), nperseg, noverlap)
    return (np.fft.rfft(frames * window, n=nperseg) / np.sum(window)).T
