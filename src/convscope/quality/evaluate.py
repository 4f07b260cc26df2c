"""Evaluate stage: one output channel against a real resampler (soxr by default).

The reference is `librosa.resample(input, orig_sr, target_sr, res_type=...)` of the same input
at the output rate; with the mean of the input channels when there are several, since the
interpolating inits average their inputs. Pure: the stage's files (metrics.json,
plots/spectrum.png, audio/reference.wav) are written by convscope.pipeline.evaluate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np

from convscope.config.schema import EvaluateConfig
from convscope.errors import ConvscopeError
from convscope.quality.metrics import (
    Metrics,
    compare,
    db_text,
    image_level_db,
    tone_frequencies,
    trimmed_edge,
)
from convscope.stack.plan import LayerPlan
from convscope.stack.rates import upsampling_factor

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
    return evaluation_plan(cfg, plans[-1].output_shape[1], upsampling_factor(plans), input_rate,
                           output_rate)


def evaluation_plan(cfg: EvaluateConfig, out_channels: int, upsampling: int, input_rate: int,
                    output_rate: int) -> Optional[EvaluationPlan]:
    """plan_evaluation for any model: its output channels and the product of its up factors
    (where the stride tones sit)."""
    if cfg.enabled == "false" or (cfg.enabled == "auto" and output_rate == input_rate):
        return None
    if cfg.channel >= out_channels:
        raise ConvscopeError(f"evaluate.channel: {cfg.channel} but the last layer gives "
                             f"{out_channels} channel(s), 0..{out_channels - 1}")
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
    import librosa  # about a second to import (numba): only for librosa's other resamplers

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
            ("images above input Nyquist", m.image_db, f"reference: {db_text(reference_images)}"),
            ("stride tone", m.tone_db, f"at {tones or '-'} Hz, relative to the output")]
    lines = [f"  {name:<28}{db_text(value, 2):>12}   ({note})" for name, value, note in rows]
    return "\n".join([head + f" ({_edge_text(evaluation)})", *lines])


def _edge_text(evaluation: Evaluation) -> str:
    """What compare() trimmed: evaluate.edge_ms, or the third of the signal it is capped at."""
    plan = evaluation.plan
    compared = min(len(evaluation.output), len(evaluation.reference))
    done = trimmed_edge(compared, plan.edge)
    text = f"{1000 * done / plan.output_rate:g} ms left out at each end"
    if done < plan.edge:
        text += (f": evaluate.edge_ms={1000 * plan.edge / plan.output_rate:g} capped at a third "
                 f"of the {compared} compared samples")
    return text
