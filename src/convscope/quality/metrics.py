"""How close an upsampled signal is to a reference, and how much imaging and tone it carries.

Pure functions of NumPy arrays. Ratios are in dB and clipped to ±FLOOR_DB so that a perfect
match or a missing artifact is a finite number JSON can hold (-200 dB means "none measurable");
people read those floors through `db_text`: "none", not -200 dB.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# NumPy copies of scipy.signal.welch and .stft (same numbers): importing scipy.signal costs ~1 s
from convscope.quality.spectral import kaiser, stft, welch_psd

FLOOR_DB = 200.0
# Kaiser beta 20: sidelobes near -190 dB, so strong low bands don't leak into the measurement
# of weak images or tones (a Hann window's leakage would dominate them).
KAISER_BETA = 20.0
WELCH_SEGMENT = 4096
LSD_FFT, LSD_HOP = 2048, 512
LSD_FLOOR_DB = -100.0


@dataclass(frozen=True)
class Metrics:
    snr_db: float  # reference power / error power
    lsd_db: float  # log-spectral distance to the reference
    image_db: float  # output power above the input Nyquist / below it
    tone_db: float  # stride-periodic tone power / output power

    def as_json(self) -> dict:
        return {name: round(float(value), 3) for name, value in asdict(self).items()}


def ratio_db(numerator: float, denominator: float) -> float:
    """10*log10(numerator/denominator), clipped to ±FLOOR_DB (0/0 counts as -FLOOR_DB)."""
    if numerator <= 0:
        return -FLOOR_DB
    if denominator <= 0:
        return FLOOR_DB
    return float(np.clip(10 * np.log10(numerator / denominator), -FLOOR_DB, FLOOR_DB))


def db_text(value: float, digits: int = 1) -> str:
    """A ratio in dB as people read it: the -FLOOR_DB floor (nothing measurable: no tone, no
    image) is "none", the +FLOOR_DB ceiling (no error at all) is "exact"."""
    if value <= -FLOOR_DB:
        return "none"
    if value >= FLOOR_DB:
        return "exact"
    return f"{value:.{digits}f} dB"


def trimmed_edge(length: int, edge: int) -> int:
    """The samples trim_edges drops at each end of `length`: `edge`, capped at a third."""
    return min(int(edge), length // 3)


def trim_edges(x: np.ndarray, edge: int) -> np.ndarray:
    """Drop `edge` samples at both ends (never everything: at most a third on each side)."""
    edge = trimmed_edge(len(x), edge)
    return x[edge: len(x) - edge] if edge else x


def snr_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Signal-to-noise ratio of `estimate`, the noise being its difference from `reference`."""
    estimate, reference = _as_pair(estimate, reference)
    return ratio_db(float(np.sum(reference ** 2)), float(np.sum((estimate - reference) ** 2)))


def power_spectrum(x: np.ndarray, sample_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Welch power spectral density (Kaiser window, half overlap): frequencies (Hz), power."""
    x = np.asarray(x, dtype=np.float64)
    segment = min(len(x), WELCH_SEGMENT)
    return welch_psd(x, sample_rate, kaiser(segment, KAISER_BETA), segment // 2)


def image_level_db(x: np.ndarray, sample_rate: float, input_rate: float) -> float:
    """Power above the input's Nyquist (input_rate/2) relative to the power below it.

    An upsampler should add nothing above the old Nyquist: everything there is an image of the
    input's spectrum that the interpolation filter failed to remove.
    """
    freqs, psd = power_spectrum(x, sample_rate)
    above = freqs > input_rate / 2
    return ratio_db(float(psd[above].sum()), float(psd[~above].sum()))


def tone_frequencies(sample_rate: float, upsampling: int) -> list[float]:
    """m * sample_rate / upsampling for m = 1, 2, ... up to the Nyquist frequency."""
    spacing = sample_rate / upsampling
    return [m * spacing for m in range(1, upsampling // 2 + 1)]


def tone_level_db(x: np.ndarray, sample_rate: float, upsampling: int) -> float:
    """Power of the stride-periodic tone, relative to the signal's power.

    A transposed conv with stride s whose kernel overlaps unevenly (kernel_size not a multiple
    of s, or taps that don't sum equally per phase) multiplies its output by a gain that
    repeats every s output samples: a constant input becomes [2,2,3,2,3,...]. A period-s
    pattern has lines at exactly m * output_rate / s, m = 1..s/2; for a stack, with s the product
    of its upsampling factors (`upsampling`), every layer's pattern lands on these lines.

    Definition: for each f_m in `tone_frequencies`, the amplitude A_m = sum(w*x*exp(-2πi f_m n/fs))
    / sum(w), with w a Kaiser(beta=20) window over the whole signal, so only content within a
    few Hz of f_m counts. Power P_m = 2|A_m|² below Nyquist and |A_m|² at Nyquist (a real
    sinusoid's mean square). tone_db = 10*log10(sum(P_m) / mean(x²)). The constant-input
    pattern [2,3,2,3,...] gives 10*log10(0.5² / 6.5) = -14.15 dB; an even kernel gives none.
    """
    x = np.asarray(x, dtype=np.float64)
    window = np.kaiser(len(x), KAISER_BETA)
    n = np.arange(len(x))
    tone_power = 0.0
    for freq in tone_frequencies(sample_rate, upsampling):
        amplitude = np.sum(window * x * np.exp(-2j * np.pi * freq * n / sample_rate)) / window.sum()
        at_nyquist = np.isclose(freq, sample_rate / 2)
        tone_power += (1 if at_nyquist else 2) * abs(amplitude) ** 2
    return ratio_db(tone_power, float(np.mean(x ** 2)))


def log_spectral_distance_db(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Mean over STFT frames of the RMS difference of the log power spectra, in dB.

    LSD = mean_t sqrt(mean_f (10*log10 P_est(t,f) - 10*log10 P_ref(t,f))²), Hann window of
    LSD_FFT samples. Both spectra are floored at LSD_FLOOR_DB below the reference's loudest bin,
    so bins that are silent in both (e.g. images both suppress below -100 dB) count as equal.
    """
    estimate, reference = _as_pair(estimate, reference)
    n_fft = min(LSD_FFT, len(reference))
    hop = max(1, min(LSD_HOP, n_fft // 4))
    spectra = [np.abs(stft(x, n_fft, n_fft - hop)) ** 2 for x in (estimate, reference)]
    floor = max(float(spectra[1].max()), 1e-30) * 10 ** (LSD_FLOOR_DB / 10)
    est_db, ref_db = (10 * np.log10(np.maximum(s, floor)) for s in spectra)
    return float(np.mean(np.sqrt(np.mean((est_db - ref_db) ** 2, axis=0))))


def compare(output: np.ndarray, reference: np.ndarray, output_rate: float, input_rate: float,
            upsampling: int, edge: int) -> Metrics:
    """All four metrics on the common length of output and reference, `edge` samples trimmed."""
    output, reference = _as_pair(output, reference)
    output, reference = trim_edges(output, edge), trim_edges(reference, edge)
    return Metrics(snr_db=snr_db(output, reference),
                   lsd_db=log_spectral_distance_db(output, reference),
                   image_db=image_level_db(output, output_rate, input_rate),
                   tone_db=tone_level_db(output, output_rate, upsampling))


def _as_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64, cut to their common length (aligned at sample 0)."""
    length = min(len(a), len(b))
    return (np.asarray(a[:length], dtype=np.float64), np.asarray(b[:length], dtype=np.float64))
