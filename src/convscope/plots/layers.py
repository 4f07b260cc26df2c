"""Feature-map figures and spectrograms (convscope.plots.figure: Agg canvas, atomic save).

A long signal is drawn as its min/max envelope over as many bins as the figure has pixels, so a
plot of an hour of audio costs the same as a plot of a second and still shows every peak.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from convscope.config.schema import PlotsConfig
from convscope.plots.envelopes import Envelope, minmax_envelope
from convscope.plots.figure import save_figure, subplots

# NumPy copy of scipy.signal.spectrogram: importing scipy.signal costs ~1 s of start-up
from convscope.quality.spectral import spectrogram_magnitude

MAX_SPECTROGRAM_FRAMES = 2000


def _draw(ax, x: np.ndarray | Envelope, sample_rate: float, max_bins: int, color: str) -> None:
    # streamed runs pass envelopes accumulated block by block (plots.envelopes)
    env = x if isinstance(x, Envelope) else minmax_envelope(x, sample_rate, max_bins)
    if env.low is env.high:
        ax.plot(env.times, env.low, color=color, linewidth=0.6)
    else:
        ax.fill_between(env.times, env.low, env.high, color=color, linewidth=0.4)
    ax.set_xlim(0, env.duration)
    ax.grid(alpha=0.3)


def plot_layer(path: Path, title: str, input_signal: np.ndarray | Envelope, input_rate: float,
               outputs: np.ndarray | list[Envelope], output_rate: float, cfg: PlotsConfig,
               total_channels: Optional[int] = None) -> None:
    """The input waveform above each output channel of one layer (channels, length), or above
    envelopes of the first channels when `total_channels` says how many the layer has."""
    shown = outputs[: cfg.max_channels]
    rows = 1 + len(shown)
    fig, axes = subplots(rows, 1, figsize=(cfg.width_inches, 1.6 * rows + 0.6), sharex=True,
                             squeeze=False)
    max_bins = int(cfg.width_inches * cfg.dpi)
    _draw(axes[0, 0], input_signal, input_rate, max_bins, "tab:gray")
    axes[0, 0].set_ylabel("input")
    for channel, (ax, x) in enumerate(zip(axes[1:, 0], shown)):
        _draw(ax, x, output_rate, max_bins, f"C{channel % 10}")
        ax.set_ylabel(f"ch {channel}")
    axes[-1, 0].set_xlabel("time (s)")
    hidden = (len(outputs) if total_channels is None else total_channels) - len(shown)
    fig.suptitle(title + (f"  (+{hidden} channels not drawn)" if hidden else ""), fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, cfg.dpi)


def spectrogram_db(x: np.ndarray, sample_rate: float, window_ms: float):
    """Magnitude STFT in dB; the hop grows for long signals so the frame count stays bounded."""
    n_fft = max(16, int(round(sample_rate * window_ms / 1000)))
    hop = max(n_fft // 4, int(np.ceil(len(x) / MAX_SPECTROGRAM_FRAMES)))
    noverlap = max(0, n_fft - hop) if hop < n_fft else 0
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    freqs, times, power = spectrogram_magnitude(x, sample_rate, n_fft, noverlap)
    return freqs, times, 20 * np.log10(np.maximum(power, 1e-10))


def plot_spectrograms(path: Path, input_signal: np.ndarray, input_rate: float,
                      outputs: np.ndarray, output_rate: float, cfg: PlotsConfig) -> None:
    """Input and final-output channels side by side, one colour scale, old Nyquist marked."""
    shown = outputs[: cfg.spectrogram_channels(len(outputs))]
    panels = [("input", input_signal, input_rate)]
    panels += [(f"output ch {k}", x, output_rate) for k, x in enumerate(shown)]
    specs = [spectrogram_db(x, rate, cfg.window_ms) for _, x, rate in panels]
    top = max(float(s[2].max()) for s in specs)
    fig, axes = subplots(1, len(panels), figsize=(cfg.width_inches, 4), squeeze=False)
    for ax, (name, x, rate), (freqs, times, db) in zip(axes[0], panels, specs):
        image = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - 100,
                          vmax=top, extent=(0, len(x) / rate, 0, freqs[-1] / 1000))
        ax.set_title(f"{name} ({rate:g} Hz)", fontsize=9)
        ax.set_xlabel("time (s)")
        if rate > input_rate:
            ax.axhline(input_rate / 2000, color="cyan", linestyle="--", linewidth=0.8)
            ax.text(0.01, input_rate / 2000, " input Nyquist", color="cyan", fontsize=7,
                    va="bottom", transform=ax.get_yaxis_transform())
    axes[0, 0].set_ylabel("frequency (kHz)")
    fig.colorbar(image, ax=axes[0].tolist(), label="dB", fraction=0.03)
    save_figure(fig, path, cfg.dpi)
