"""Feature-map figures and spectrograms (convscope.plots.figure: Agg canvas, atomic save).

A long signal is drawn as its min/max envelope over as many bins as the figure has pixels, so a
plot of an hour of audio costs the same as a plot of a second and still shows every peak.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from convscope.audio.features import FeatureInput
from convscope.config.schema import PlotsConfig
from convscope.plots.envelopes import Envelope, minmax_envelope, sample_times
from convscope.plots.features import draw_feature_image, feature_image_values
from convscope.plots.figure import new_figure, save_figure
from convscope.plots.layout import Row, place_columns, place_rows
from convscope.plots.signals import LayerSignals, capped, layer_title, rate_label
from convscope.plots.stems import draw_zoom

# NumPy copy of scipy.signal.spectrogram: importing scipy.signal costs ~1 s of start-up
from convscope.quality.spectral import spectrogram_magnitude

MAX_SPECTROGRAM_FRAMES = 2000
FEATURE_ROWS = 2  # a feature input's image is drawn twice as tall as a waveform row
ZOOM_ROWS = 1.4  # each of the zoom panel's two rows, in waveform rows

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


def plot_layer(path: Path, layer: LayerSignals, cfg: PlotsConfig) -> Figure:
    """The layer's input channels (or a feature input's frames as an image) above its output
    channels over the whole segment (MAX_CHANNEL_PANELS rows at most), then the zoom panel,
    whose window the whole-segment rows mark and their legend names; returns the saved figure."""
    layer = capped(layer)
    image = isinstance(layer.input, FeatureInput)
    in_rows = [FEATURE_ROWS] if image else [1] * layer.drawn_inputs
    out_rows = [1] * len(layer.output)
    zoom_rows = [ZOOM_ROWS, ZOOM_ROWS] if layer.zoom is not None else []
    ratios = in_rows + out_rows + zoom_rows
    row_inches = 1.6 if len(in_rows) + len(out_rows) <= 6 else 1.15
    # a feature image's colour bar is left to constrained layout; waveform rows are placed by
    # plots.layout, which measures only the labels that decide the margins (far cheaper)
    fig = new_figure((cfg.width_inches, row_inches * sum(ratios) + 1.0),
                     layout="constrained" if image else None)
    grid = fig.add_gridspec(len(ratios), 1, height_ratios=ratios)
    full = [fig.add_subplot(grid[0])]
    full += [fig.add_subplot(grid[i], sharex=full[0]) for i in range(1, len(in_rows + out_rows))]
    max_bins = int(cfg.width_inches * cfg.dpi)
    if image:
        drawn = draw_feature_image(full[0], layer.input)
        fig.colorbar(drawn, ax=full[0], pad=0.01, fraction=0.02,
                     label=feature_image_values(layer.input)[1])
    else:
        for channel, (ax, x) in enumerate(zip(full, layer.input)):
            _draw(ax, x, layer.input_rate, max_bins, "tab:gray")
            ax.set_ylabel(f"input ch {channel}\n(amplitude)", fontsize=8)
    for channel, (ax, x) in enumerate(zip(full[len(in_rows):], layer.output)):
        _draw(ax, x, layer.output_rate, max_bins, f"C{channel % 10}")
        ax.set_ylabel(f"output ch {channel}\n(amplitude)", fontsize=8)
    for ax in full[:-1]:
        ax.tick_params(labelbottom=False)
    full[-1].set_xlabel("time (s from the segment start)")
    if layer.zoom is not None:
        ax_in = fig.add_subplot(grid[len(full)])
        ax_out = fig.add_subplot(grid[len(full) + 1], sharex=ax_in)
        ax_in.tick_params(labelbottom=False)
        draw_zoom(ax_in, ax_out, layer.zoom, "input ch 0", "output ch 0")
        span = (float(layer.zoom.input_times[0]), float(layer.zoom.input_times[-1]))
        label = f"zoom window (bottom panels): {span[0] * 1000:.1f}-{span[1] * 1000:.1f} ms"
        for ax in full:  # where the zoom is, on the whole-segment rows: light, edged, named
            ax.axvspan(*span, facecolor=(0.84, 0.15, 0.16, 0.08),
                       edgecolor=(0.84, 0.15, 0.16, 0.7), linewidth=0.8, label=label)
        full[0].legend(loc="upper right", fontsize=7, framealpha=0.8)
    if image:
        fig.suptitle(layer_title(layer), fontsize=10)
    else:
        rows = [Row(ax, ratio) for ax, ratio in zip(full, ratios)]
        rows[-1].x_labels = True
        if layer.zoom is not None:
            rows += [Row(ax_in, ZOOM_ROWS, group_gap=True), Row(ax_out, ZOOM_ROWS, x_labels=True)]
        place_rows(fig, rows, layer_title(layer), 10)
    save_figure(fig, path, cfg.dpi)
    return fig


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
                      outputs: np.ndarray, output_rate: Rate, cfg: PlotsConfig) -> Figure:
    """Input and final-output channels side by side on ONE frequency axis (0 to the higher of the
    two Nyquists: the output's, for an upsampler) and one colour scale, the other Nyquist marked
    on every panel. A feature input is drawn as its image (its own colour scale), then the target
    audio it was computed from, which the output channels are meant to match. Returns the
    saved figure."""
    shown = outputs[: cfg.spectrogram_channels(len(outputs))]
    features = input_signal if isinstance(input_signal, FeatureInput) else None
    if features is None:
        panels = [("input ch 0", input_signal, input_rate)]
    elif features.target is None:  # precomputed frames: the image, then the output
        panels = []
    else:
        target = features.target
        panels = [("target audio", target.samples[0], target.sample_rate)]
    panels += [(f"output ch {k}", x, output_rate) for k, x in enumerate(shown)]
    specs = [spectrogram_db(x, rate, cfg.window_ms) for _, x, rate in panels]
    top = max(float(s[2].max()) for s in specs)
    columns = len(panels) + (features is not None)
    # a feature image's own colour bar is left to constrained layout (it keeps each colour bar
    # out of its neighbour); audio panels are placed by plots.layout, far cheaper
    fig = new_figure((cfg.width_inches, 4.2),
                     layout="constrained" if features is not None else None)
    axes = fig.subplots(1, columns, squeeze=False)
    spectrogram_axes = axes[0, columns - len(panels):]
    if features is not None:
        drawn = draw_feature_image(axes[0, 0], features)
        axes[0, 0].set_title(f"input {features.settings.kind} ({rate_label(input_rate)} Hz)",
                             fontsize=9)
        axes[0, 0].set_xlabel("time (s)")
        fig.colorbar(drawn, ax=axes[0, 0], label=feature_image_values(features)[1])
    nyquists = sorted({float(rate) / 2000 for _, _, rate in panels})
    ceiling = nyquists[-1]  # kHz: the one frequency axis every panel shares
    for ax, (name, x, rate), (freqs, times, db) in zip(spectrogram_axes, panels, specs):
        image = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - 100,
                          vmax=top, extent=(0, float(sample_times(len(x), rate)), 0,
                                            freqs[-1] / 1000))
        ax.set_ylim(0, ceiling)
        own = float(rate) / 2000
        if own < ceiling:  # nothing can be there: say so instead of leaving it blank
            ax.axhspan(own, ceiling, facecolor="0.92", edgecolor="0.6", hatch="//",
                       linewidth=0)
            ax.text(0.5, (own + ceiling) / 2, "above this signal's Nyquist:\nno samples",
                    ha="center", va="center", fontsize=8, color="0.3",
                    transform=ax.get_yaxis_transform())
        for other in nyquists[:-1]:
            ax.axhline(other, color="cyan", linestyle="--", linewidth=0.9)
            label = "input Nyquist" if other == float(input_rate) / 2000 else "Nyquist"
            ax.text(0.99, other, f"{label} {other:g} kHz ", color="cyan", fontsize=7,
                    ha="right", va="bottom", transform=ax.get_yaxis_transform())
        ax.set_title(f"{name} ({rate_label(rate)} Hz)", fontsize=9)
        ax.set_xlabel("time (s)")
    for ax in spectrogram_axes[1:]:
        ax.tick_params(labelleft=False)
    spectrogram_axes[0].set_ylabel("frequency (kHz)")
    if features is not None:
        fig.colorbar(image, ax=spectrogram_axes.tolist(), label="power (dB)", fraction=0.03)
    else:
        bar = fig.add_axes((0.0, 0.0, 0.01, 1.0))
        fig.colorbar(image, cax=bar, label="power (dB)")
        place_columns(fig, spectrogram_axes.tolist(), bar, colorbar_fraction=0.03)
    save_figure(fig, path, cfg.dpi)
    return fig
