"""Evaluate stage: one output channel against a real resampler (soxr by default).

The reference is `librosa.resample(input, orig_sr, target_sr, res_type=...)` of the same input
at the output rate; with the mean of the input channels when there are several, since the
interpolating inits average their inputs. Writes metrics.json, plots/spectrum.png and
audio/reference.wav (the report page links it).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from convscope.atomic import write_text
from convscope.audio import clipping_gain, write_wav
from convscope.config import AudioConfig, EvaluateConfig, PlotsConfig
from convscope.errors import ConvscopeError
from convscope.layers import LayerPlan, upsampling_factor
from convscope.metrics import Metrics, compare, image_level_db, tone_frequencies

log = logging.getLogger("convscope")


@dataclass(frozen=True)
class EvaluationPlan:
    """What the stage will compare, checked before any file is written."""

    channel: int
    reference: str  # librosa res_type
    input_rate: int
    output_rate: int
    upsampling: int  # product of the stack's up factors: the tone lines sit at output_rate/this
    edge: int  # output samples left out at each end


@dataclass(frozen=True)
class Evaluation:
    plan: EvaluationPlan
    metrics: Metrics
    output: np.ndarray  # the compared channel
    reference: np.ndarray

    def as_json(self) -> dict:
        return {"channel": self.plan.channel, "reference": self.plan.reference,
                **self.metrics.as_json()}


def plan_evaluation(cfg: EvaluateConfig, plans: list[LayerPlan], input_rate: int,
                    output_rate: int) -> Optional[EvaluationPlan]:
    """None when the stage is off (auto: the stack doesn't change the rate)."""
    if cfg.enabled == "false" or (cfg.enabled == "auto" and output_rate == input_rate):
        return None
    out_channels = plans[-1].output_shape[1]
    if cfg.channel >= out_channels:
        raise ConvscopeError(f"evaluate.channel: {cfg.channel} but the last layer gives "
                             f"{out_channels} channel(s), 0..{out_channels - 1}")
    upsampling = upsampling_factor(plans)
    edge = int(round(cfg.edge_ms * output_rate / 1000))
    return EvaluationPlan(cfg.channel, cfg.reference, input_rate, output_rate, upsampling, edge)


def reference_signal(plan: EvaluationPlan, samples: np.ndarray) -> np.ndarray:
    """The reference resampler's output for input samples (channels, length), channels averaged."""
    mono = np.asarray(samples).mean(axis=0)
    if plan.reference.startswith("soxr"):
        # librosa.resample's own soxr path (soxr, then fix the length to ceil(n * ratio)), without
        # importing librosa and numba: ~1 s of the reference example (tests/test_bench.py)
        import soxr

        resampled = soxr.resample(mono, plan.input_rate, plan.output_rate, quality=plan.reference)
        length = int(np.ceil(len(mono) * float(plan.output_rate) / plan.input_rate))
        fitted = np.zeros(length, dtype=np.float32)
        fitted[: min(length, len(resampled))] = resampled[:length]
        return fitted
    import librosa

    return librosa.resample(mono, orig_sr=plan.input_rate, target_sr=plan.output_rate,
                            res_type=plan.reference).astype(np.float32)


def evaluate_output(plan: EvaluationPlan, output: np.ndarray, reference: np.ndarray) -> Evaluation:
    """Metrics of the compared output channel (1-D, channel plan.channel) against the reference."""
    output = np.asarray(output)
    metrics = compare(output, reference, plan.output_rate, plan.input_rate, plan.upsampling,
                      plan.edge)
    return Evaluation(plan, metrics, output, reference)


def format_metrics(evaluation: Evaluation, label: str = "") -> str:
    """A few lines for the log: each metric with what it means."""
    plan, m = evaluation.plan, evaluation.metrics
    reference_images = image_level_db(evaluation.reference, plan.output_rate, plan.input_rate)
    tones = ", ".join(f"{f:g}" for f in tone_frequencies(plan.output_rate, plan.upsampling))
    head = f"metrics{label}: output ch {plan.channel} vs {plan.reference} at {plan.output_rate} Hz"
    rows = [("SNR", m.snr_db, "higher is closer to the reference"),
            ("log-spectral distance", m.lsd_db, "0 is the reference's spectrum"),
            ("images above input Nyquist", m.image_db, f"reference: {reference_images:.1f} dB"),
            ("stride tone", m.tone_db, f"at {tones or '-'} Hz, relative to the output")]
    lines = [f"  {name:<28}{value:9.2f} dB   ({note})" for name, value, note in rows]
    edge_ms = 1000 * plan.edge / plan.output_rate
    return "\n".join([head + f" ({edge_ms:g} ms left out at each end)", *lines])


def write_metrics(path: Path, document: dict) -> None:
    write_text(path, json.dumps(document, indent=2) + "\n")


def write_reference_audio(path: Path, evaluation: Evaluation, audio: AudioConfig) -> None:
    """The reference at the output rate, scaled down only if it would clip (like input.wav)."""
    reference = evaluation.reference
    gain = clipping_gain(float(np.max(np.abs(reference))), audio.peak)
    write_wav(path, reference, evaluation.plan.output_rate, audio.subtype, gain)


def run_evaluation(plan: EvaluationPlan, input_samples: np.ndarray, output: np.ndarray,
                   out_dir: Path, audio: AudioConfig, plots: PlotsConfig) -> Evaluation:
    """The pipeline stage: compare output channel plan.channel (1-D) with the reference of the
    input samples (channels, length); log, write metrics.json, the spectrum plot and the WAV."""
    evaluation = evaluate_output(plan, output, reference_signal(plan, input_samples))
    log.info("%s", format_metrics(evaluation))
    if plots.enabled:
        from convscope.quality_plots import plot_spectrum

        plot_spectrum(out_dir / "plots" / "spectrum.png", evaluation, plots)
    if audio.enabled:
        write_reference_audio(out_dir / "audio" / "reference.wav", evaluation, audio)
    write_metrics(out_dir / "metrics.json", evaluation.as_json())
    return evaluation
