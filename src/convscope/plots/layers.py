"""Feature-map figures and spectrograms (convscope.plots.figure: Agg canvas, atomic save).

A long signal is drawn as its min/max envelope over as many bins as the figure has pixels, so a
plot of an hour of audio costs the same as a plot of a second and still shows every peak.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

from convscope.audio.features import FeatureInput
from convscope.config.schema import PlotsConfig
from convscope.plots.envelopes import Envelope, minmax_envelope, sample_times
from convscope.plots.features import draw_feature_image, feature_image_values
from convscope.plots.figure import new_figure, save_figure, subplots

# NumPy copy of scipy.signal.spectrogram: importing scipy.signal costs ~1 s of start-up
from convscope.quality.spectral import spectrogram_magnitude

MAX_SPECTROGRAM_FRAMES = 2000
FEATURE_ROWS = 2  # a feature input's image is drawn twice as tall as a waveform row

Rate = float | Fraction  # exact rates (stack.rates) are Fractions; time axes divide exactly


def _draw(ax, x: np.ndarray | Envelope, sample_rate: Rate, max_bins: int, color: str) -> None:
    # streamed runs pass envelopes accumulated block by block (plots.envelopes)
    env = x if isinstance(x, Envelope) else minmax_envelope(x, sample_rate, max_bins)
    if env.low is env.high:
        ax.plot(env.times, env.low, color=color, linewidth=0.6)
    else:
        ax.fill_between(env.times, env.low, env.high, color=color, linewidth=0.4)
    ax.set_xlim(0, env.duration)
    ax.grid(alpha=0.3)


def plot_layer(path: Path, title: str, input_signal: np.ndarray | Envelope | FeatureInput,
               input_rate: Rate, outputs: np.ndarray | list[Envelope], output_rate: Rate,
               cfg: PlotsConfig, total_channels: Optional[int] = None) -> None:
    """The input (a waveform, or a feature input's frames as an image) above each output channel
    of one layer (channels, length), or above envelopes of the first channels when
    `total_channels` says how many the layer has."""
    shown = outputs[: cfg.max_channels]
    image = isinstance(input_signal, FeatureInput)
    top = FEATURE_ROWS if image else 1
    fig = new_figure((cfg.width_inches, 1.6 * (top + len(shown)) + 0.6))
    axes = fig.subplots(1 + len(shown), 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": [top] + [1] * len(shown)})
    max_bins = int(cfg.width_inches * cfg.dpi)
    if image:
        drawn = draw_feature_image(axes[0, 0], input_signal)
        fig.colorbar(drawn, ax=axes[0, 0], pad=0.01, fraction=0.02,
                     label=feature_image_values(input_signal)[1])
    else:
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


def spectrogram_db(x: np.ndarray, sample_rate: Rate, window_ms: float):
    """Magnitude STFT in dB; the hop grows for long signals so the frame count stays bounded."""
    n_fft = max(16, int(round(sample_rate * window_ms / 1000)))
    sample_rate = float(sample_rate)  # the NumPy spectrogram's frequency axis
    hop = max(n_fft // 4, int(np.ceil(len(x) / MAX_SPECTROGRAM_FRAMES)))
    noverlap = max(0, n_fft - hop) if hop < n_fft else 0
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    freqs, times, power = spectrogram_magnitude(x, sample_rate, n_fft, noverlap)
    return freqs, times, 20 * np.log10(np.maximum(power, 1e-10))


def plot_spectrograms(path: Path, input_signal: np.ndarray | FeatureInput, input_rate: Rate,
                      outputs: np.ndarray, output_rate: Rate, cfg: PlotsConfig) -> None:
    """Input and final-output channels side by side, one colour scale, old Nyquist marked. A
    feature input is drawn as its image (its own colour scale), then the target audio it was
    computed from, which the output channels are meant to match."""
    shown = outputs[: cfg.spectrogram_channels(len(outputs))]
    features = input_signal if isinstance(input_signal, FeatureInput) else None
    if features is None:
        panels = [("input", input_signal, input_rate)]
    else:
        target = features.target
        panels = [("target audio", target.samples[0], target.sample_rate)]
    panels += [(f"output ch {k}", x, output_rate) for k, x in enumerate(shown)]
    specs = [spectrogram_db(x, rate, cfg.window_ms) for _, x, rate in panels]
    top = max(float(s[2].max()) for s in specs)
    columns = len(panels) + (features is not None)
    if features is None:
        fig, axes = subplots(1, columns, figsize=(cfg.width_inches, 4), squeeze=False)
    else:  # two colour bars: constrained layout keeps the image's own out of its neighbour
        fig = new_figure((cfg.width_inches, 4), layout="constrained")
        axes = fig.subplots(1, columns, squeeze=False)
    spectrogram_axes = axes[0, columns - len(panels):]
    if features is not None:
        drawn = draw_feature_image(axes[0, 0], features)
        axes[0, 0].set_title(f"input {features.settings.kind} ({_rate_label(input_rate)} Hz)",
                             fontsize=9)
        axes[0, 0].set_xlabel("time (s)")
        fig.colorbar(drawn, ax=axes[0, 0], label=feature_image_values(features)[1])
    for ax, (name, x, rate), (freqs, times, db) in zip(spectrogram_axes, panels, specs):
        image = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - 100,
                          vmax=top, extent=(0, float(sample_times(len(x), rate)), 0,
                                            freqs[-1] / 1000))
        ax.set_title(f"{name} ({_rate_label(rate)} Hz)", fontsize=9)
        ax.set_xlabel("time (s)")
        if features is None and rate > input_rate:
            ax.axhline(float(input_rate) / 2000, color="cyan", linestyle="--", linewidth=0.8)
            ax.text(0.01, float(input_rate) / 2000, " input Nyquist", color="cyan", fontsize=7,
                    va="bottom", transform=ax.get_yaxis_transform())
    spectrogram_axes[0].set_ylabel("frequency (kHz)")
    fig.colorbar(image, ax=spectrogram_axes.tolist(), label="dB", fraction=0.03)
    save_figure(fig, path, cfg.dpi)


def _rate_label(rate: Rate) -> str:
    """`16000`, `11025/128 = 86.1328` for an exact rate that is not whole, `%g` for a float."""
    if isinstance(rate, Fraction):
        return str(rate) if rate.denominator == 1 else f"{rate} = {float(rate):.6g}"
    return f"{rate:g}"
