"""A feature input (mel, log-mel or |STFT| frames) drawn as an image: time across, bins up.

Each frame is drawn over the stretch of audio its hop stands for, so the image lines up with the
output's time axis: with HiFi-GAN's framing (center=false) frame t covers [t, t+1) hops, with
librosa's centred frames it is centred on t hops.
"""

from __future__ import annotations

import numpy as np

from convscope.audio.features import LOG_CLAMP, FeatureInput

TICKS = 6  # frequency labels on a mel axis (its bands are not evenly spaced in Hz)


def feature_image_values(features: FeatureInput) -> tuple[np.ndarray, str]:
    """What the image shows and its colour-bar label: log_mel as it is (the stack's input),
    magnitudes (mel, stft) in dB, where a linear scale would show only the loudest bins."""
    if features.settings.kind == "log_mel":  # MelGAN's frontend takes log10
        return features.samples, "log10(mel)" if features.settings.log_base == "10" else "ln(mel)"
    if features.settings.is_precomputed:  # unknown scale (a log mel, latents): as stored
        return features.samples, "value"
    return 20 * np.log10(np.maximum(features.samples, LOG_CLAMP)), "dB"


def time_extent(features: FeatureInput) -> tuple[float, float]:
    """Seconds from the segment start where the first frame's stretch begins and the last ends."""
    frames = features.samples.shape[-1]
    shift = 0.5 if features.settings.center else 0.0  # centred frames sit on their hop
    rate = features.sample_rate
    return (float(-shift / rate), float((frames - shift) / rate))


def draw_feature_image(ax, features: FeatureInput, vmin: float | None = None,
                       vmax: float | None = None):
    """Draw the frames on `ax` (y: bin index, labelled in Hz); returns the image for a colour
    bar."""
    values, _ = feature_image_values(features)
    start, stop = time_extent(features)
    bins = values.shape[0]
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="magma", vmin=vmin, vmax=vmax,
                      extent=(start, stop, -0.5, bins - 0.5), interpolation="nearest")
    settings = features.settings
    ticks = np.unique(np.linspace(0, bins - 1, min(TICKS, bins)).round().astype(int))
    ax.set_yticks(ticks)
    if settings.is_precomputed:  # a file's channels: no frequency convscope could know
        ax.set_ylabel("precomputed\nchannel", fontsize=8)
        return image
    hz = settings.bin_frequencies()
    ax.set_yticklabels([_hz_text(hz[k]) for k in ticks], fontsize=7)
    ax.set_ylabel(f"{settings.kind}\n{settings.bin_label} (Hz)", fontsize=8)
    return image


def _hz_text(hz: float) -> str:
    return f"{hz / 1000:.1f}k" if hz >= 1000 else f"{hz:.0f}"
