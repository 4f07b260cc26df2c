"""Figures for upsampling quality: spectra against the reference, loss curves, learned kernels.

Drawn and saved the one way convscope.plots.figure provides (Agg canvas, atomic save).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from convscope.config.schema import PlotsConfig
from convscope.plots.figure import save_figure, subplots
from convscope.quality.metrics import db_text, power_spectrum, tone_frequencies, trim_edges

if TYPE_CHECKING:
    from convscope.quality.evaluate import Evaluation
    from convscope.quality.kernel_views import KernelView

SPECTRUM_RANGE_DB = 160.0


def power_db(x: np.ndarray, sample_rate: float):
    """Welch spectrum in absolute dB."""
    freqs, psd = power_spectrum(x, sample_rate)
    return freqs, 10 * np.log10(np.maximum(psd, 1e-300))


def spectrum_db(x: np.ndarray, sample_rate: float, top: float | None = None):
    """Welch spectrum in dB relative to `top` (default: its own peak)."""
    freqs, db = power_db(x, sample_rate)
    return freqs, db - (db.max() if top is None else top)


def mark_input_nyquist(ax, input_rate: float) -> None:
    ax.axvline(input_rate / 2000, color="tab:red", linestyle="--", linewidth=0.9)
    ax.axvspan(input_rate / 2000, ax.get_xlim()[1], color="tab:red", alpha=0.06)
    ax.text(input_rate / 2000, 0.98, " input Nyquist: images above", color="tab:red",
            fontsize=8, va="top", transform=ax.get_xaxis_transform())


def mark_tones(ax, freqs: Sequence[float]) -> None:
    """Triangles just inside the top edge where the stride tone would be (the Nyquist edge
    included): placed in axes coordinates, so no y limit or title can cut them."""
    for i, freq in enumerate(freqs):
        ax.plot([freq / 1000], [0.955], marker="v", markersize=9, color="tab:orange",
                transform=ax.get_xaxis_transform(), clip_on=False, linestyle="none",
                label="stride tone frequency" if i == 0 else None)


def plot_spectrum(path: Path, evaluation: "Evaluation", cfg: PlotsConfig):
    """Output channel and reference spectra on one axis, old Nyquist and tone lines marked;
    returns the saved figure."""
    plan, m = evaluation.plan, evaluation.metrics
    output = trim_edges(evaluation.output, plan.edge)
    reference = trim_edges(evaluation.reference, plan.edge)
    ref_freqs, ref_db = power_db(reference, plan.output_rate)
    top = float(ref_db.max())  # both curves in dB below the reference's peak
    ref_db = ref_db - top
    out_freqs, out_db = spectrum_db(output, plan.output_rate, top)
    fig, ax = subplots(figsize=(cfg.width_inches, 4.2))
    ax.plot(ref_freqs / 1000, ref_db, color="tab:gray", linewidth=1.0,
            label=f"reference ({plan.reference})")
    ax.plot(out_freqs / 1000, out_db, color="tab:blue", linewidth=0.8,
            label=f"output ch {plan.channel}")
    nyquist_khz = plan.output_rate / 2000
    # A little room past 0 and Nyquist: a constant's DC and stride tone sit exactly there.
    ax.set_xlim(-0.015 * nyquist_khz, 1.015 * nyquist_khz)
    ax.set_ylim(-SPECTRUM_RANGE_DB, max(10.0, float(out_db.max()) + 5))
    mark_input_nyquist(ax, plan.input_rate)
    mark_tones(ax, tone_frequencies(plan.output_rate, plan.upsampling))
    ax.set_xlabel("frequency (kHz)")
    ax.set_ylabel("power (dB re reference peak)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"SNR {db_text(m.snr_db)}, LSD {m.lsd_db:.2f} dB, images above input Nyquist "
                 f"{db_text(m.image_db)}, stride tone {db_text(m.tone_db)}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, cfg.dpi)
    return fig


def plot_loss(path: Path, losses: Sequence[float], snrs: Sequence[float], cfg: PlotsConfig) -> None:
    """Training loss (log scale) and the SNR against the reference, per step."""
    fig, (ax_loss, ax_snr) = subplots(1, 2, figsize=(cfg.width_inches, 3.6))
    steps = np.arange(1, len(losses) + 1)
    ax_loss.semilogy(steps, losses, color="tab:blue", linewidth=1)
    ax_loss.set(xlabel="step", ylabel="loss", title="training loss")
    ax_snr.plot(steps, snrs, color="tab:green", linewidth=1)
    ax_snr.set(xlabel="step", ylabel="dB", title="SNR of the output channel vs the reference")
    for ax in (ax_loss, ax_snr):
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    save_figure(fig, path, cfg.dpi)


def plot_kernels(path: Path, kernels: Sequence["KernelView"], cfg: PlotsConfig) -> None:
    """Top row: taps of each kernel; bottom row: their frequency responses (dB)."""
    fig, axes = subplots(2, len(kernels), figsize=(cfg.width_inches, 6.4), squeeze=False)
    for column, view in enumerate(kernels):
        ax_taps, ax_freq = axes[0, column], axes[1, column]
        offsets = np.arange(view.taps.shape[-1]) - view.padding
        for i, taps in enumerate(view.taps):
            ax_taps.plot(offsets, taps, marker="o", markersize=3, linewidth=0.9,
                         label=view.labels[i])
            freqs, response = frequency_response(taps, view.rate)
            ax_freq.plot(freqs / 1000, response, linewidth=0.9)
        ax_taps.axhline(0, color="black", linewidth=0.5)
        ax_taps.set(title=view.title, xlabel="offset (output samples)")
        if len(view.taps) <= 6:
            ax_taps.legend(fontsize=7)
        ax_freq.set(xlabel="frequency (kHz)", ylabel="|H| (dB)", xlim=(0, view.rate / 2000))
        ax_freq.set_ylim(bottom=max(-100.0, ax_freq.get_ylim()[0]))
        if view.input_rate < view.rate:
            mark_input_nyquist(ax_freq, view.input_rate)
        for ax in (ax_taps, ax_freq):
            ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, cfg.dpi)


def frequency_response(taps: np.ndarray, rate: float, points: int = 1024):
    """|H(f)| in dB of an FIR kernel at sample rate `rate`."""
    response = np.fft.rfft(taps, n=max(2 * points, len(taps)))
    freqs = np.fft.rfftfreq(max(2 * points, len(taps)), d=1 / rate)
    return freqs, 20 * np.log10(np.maximum(np.abs(response), 1e-12))


@dataclass(frozen=True)
class ArtifactCase:
    """One transposed-conv geometry run on the two artifact probes (scripts/plot_artifacts.py)."""

    title: str
    constant_output: np.ndarray
    tone_output: np.ndarray
    rate: float
    input_rate: float
    upsampling: int
    tone_db: float  # stride tone on the constant
    image_db: float  # images of the pure tone
    tone_hz: float  # the probe tone's frequency


ZOOM_START, ZOOM_SAMPLES = 2000, 20


def plot_artifacts(path: Path, cases: Sequence[ArtifactCase], dpi: int = 90) -> None:
    """A row per case: constant in -> samples out, its spectrum, the pure tone's spectrum."""
    fig, axes = subplots(len(cases), 3, figsize=(13, 3.2 * len(cases)), squeeze=False)
    for row, case in zip(axes, cases):
        zoom = case.constant_output[ZOOM_START: ZOOM_START + ZOOM_SAMPLES]
        row[0].stem(np.arange(ZOOM_START, ZOOM_START + len(zoom)), zoom, basefmt=" ")
        row[0].set(xlabel="sample", ylim=(0, 1.3 * max(float(np.max(zoom)), 1e-3)))
        row[0].set_title(f"{case.title}\nconstant 0.5 in: output samples", fontsize=10)
        _spectrum_panel(row[1], case.constant_output, case,
                        f"constant in: stride tone {_level(case.tone_db)}",
                        case.rate / 2, "stride tone")
        _spectrum_panel(row[2], case.tone_output, case,
                        f"{case.tone_hz / 1000:g} kHz tone in: images {_level(case.image_db)}",
                        case.input_rate - case.tone_hz, "image")
        for ax in row:
            ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi)


def _spectrum_panel(ax, x: np.ndarray, case: ArtifactCase, title: str, line_hz: float,
                    line_name: str) -> None:
    """The spectrum of x, with the line at `line_hz` labelled."""
    freqs, db = spectrum_db(trim_edges(x, len(x) // 20), case.rate)
    ax.plot(freqs / 1000, db, linewidth=1.2)
    # A little room past 0 and Nyquist, where the constant's only two lines are.
    ax.set(xlim=(-0.4, case.rate / 2000 + 0.4), ylim=(-SPECTRUM_RANGE_DB, 15), title=title,
           xlabel="frequency (kHz)", ylabel="dB re peak")
    mark_input_nyquist(ax, case.input_rate)
    mark_tones(ax, tone_frequencies(case.rate, case.upsampling))
    _annotate_line(ax, freqs, db, line_hz, line_name)


def _annotate_line(ax, freqs: np.ndarray, db: np.ndarray, freq: float, name: str) -> None:
    """Label the spectrum's level at `freq` (if there is anything there to label)."""
    level = float(db[np.argmin(np.abs(freqs - freq))])
    if level < -120:
        return
    ax.annotate(f"{name}\n{freq / 1000:g} kHz", (freq / 1000, level), xytext=(-38, -34),
                textcoords="offset points", ha="right", fontsize=8, color="tab:red",
                arrowprops=dict(arrowstyle="->", color="tab:red", linewidth=0.8))


def _level(db: float) -> str:
    # below -120 dB the probes' spectra show nothing (SPECTRUM_RANGE_DB): read as none too
    return "none" if db <= -120 else db_text(db)
