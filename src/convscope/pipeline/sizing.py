"""What a run will need, for the pre-flight (pipeline/preflight.py): the forward's peak memory and
MACs from convscope.estimate (stack/estimate.py: the model's own ops on fake tensors, one shot
and one streamed block), for a config stack as for any nn.Module, and the stages that follow
it sized from the output's shape and rate (stack/budget.py's arithmetic): the spectrogram
figure, the evaluate stage, the WAVs in memory and on disk, and what stays in memory meanwhile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from torch import nn

from convscope.audio.blockio import SegmentSpan
from convscope.audio.features import FeatureInput
from convscope.audio.segment import Segment
from convscope.config.schema import RunConfig
from convscope.stack import budget
from convscope.stack.budget import Estimate, Peak
from convscope.stack.estimate import ModelEstimate, estimate
from convscope.stack.plan import LayerPlan
from convscope.stack.rates import layer_rates
from convscope.stack.rows import count_macs
from convscope.stack.user_calls import users_code

Source = SegmentSpan | Segment | FeatureInput


@dataclass(frozen=True)
class Subject:
    """The model a pre-flight sizes, and what its refusals name: a config stack's layer keys
    (from its plans), or the config key of any nn.Module (model.target, or `model` for a
    Python object) and its label."""

    model: nn.Module
    plans: Optional[list[LayerPlan]] = None  # a config stack's; None: any nn.Module
    key: str = "model"
    label: str = ""

    @property
    def forward_key(self) -> str:
        """What a memory refusal names: the largest layer of a config stack, else the model."""
        return budget.largest_layer(self.plans) if self.plans else self.key

    @property
    def heaviest(self) -> str:
        """What a compute refusal names: the config stack's top-level layer with most MACs."""
        return max(self.plans, key=count_macs).key if self.plans else self.key

    def estimated(self, shape: tuple[int, ...], rate: Fraction,
                  block: Optional[int]) -> ModelEstimate:
        """convscope.estimate of the model on `shape`, with a block of `block` input samples. A
        module's forward is the user's code: what it raises is one line naming its key."""
        if self.plans is not None:
            return estimate(self.model, shape, sample_rate=rate, block_samples=block)
        with users_code(self.key, self.label, list(shape)):
            return estimate(self.model, shape, sample_rate=rate, block_samples=block)


def stack_ratio(plans: list[LayerPlan]) -> Fraction:
    """Output samples per input sample of a config stack (plan arithmetic)."""
    return layer_rates(plans, Fraction(1))[-1]


def probe_block(seconds: float, input_rate: Fraction, ratio: Fraction, length: int) -> int:
    """Input samples of `seconds` of output, at most the whole input."""
    wanted = max(1, round(seconds * input_rate * ratio))
    return max(1, min(length, math.ceil(wanted / ratio)))


def capped_block(found: ModelEstimate, wanted: int, block_mb: float) -> int:
    """Output samples per block: `wanted`, cut so that one block's forward stays within
    `block_mb` at the bytes per output sample of the block convscope.estimate measured (its
    input block and context, times the output rate)."""
    forwarded = (found.block_samples + (found.left_context or 0)
                 + (found.right_context or 0)) * found.output_rate
    per_sample = (found.block_bytes or 0) / max(float(forwarded), 1.0)
    return max(1, min(wanted, int(block_mb * 1e6 / max(per_sample, 1e-9))))


def module_kept_bytes(cfg: RunConfig, found: ModelEstimate, input_shape) -> int:
    """What a module's one shot keeps beside its forward: its input and output (float32), and
    with plots the outputs of the conv calls drawn (describe_pass copies them in its hooks).
    Their shapes are only known once it runs, so they are counted as the forward's own peak:
    the drawn calls are the rate-changing convs, a handful of the tensors the forward holds at
    once (HiFi-GAN V1's four upsampling outputs: about a third of its peak); a config stack's
    trace keeps every layer's output, counted exactly (budget.trace_kept_bytes)."""
    kept = budget.FLOAT32 * (budget.numel(input_shape) + budget.numel(found.output_shape))
    return kept + (found.one_shot_bytes if cfg.plots.enabled else 0)


def stage_estimate(cfg: RunConfig, span: Source, found: ModelEstimate, forward: Peak,
                   one_shot_kept: int, streamed: bool, block_samples: int | None = None,
                   off: frozenset[str] = frozenset()) -> Estimate:
    """The run's estimate, one-shot or streamed in blocks of `block_samples` output samples
    (None: a module's, sized by its streamer), without the stages named in `off` (lighten's:
    "spectrogram", "evaluate"): `forward` and the MACs are convscope.estimate's (`found`), the
    stages follow from its output shape and rate. A feature input's frames are the model's
    input; its target audio is what input.wav and the spectrogram's input panel hold, and it
    has no evaluate stage (stages.plan_evaluate_stage). `one_shot_kept`: what a one-shot run
    keeps beside its forward."""
    features = isinstance(span, FeatureInput)
    draws = cfg.plots.enabled and cfg.plots.spectrogram and "spectrogram" not in off
    evaluate_on = cfg.evaluate.enabled != "false" and "evaluate" not in off
    in_rate = Fraction(span.sample_rate)
    out_rate = found.output_rate * in_rate
    shape = found.output_shape or (1, 1, 0)
    out_channels, out_length = max(1, budget.numel(shape[1:-1])), shape[-1]
    in_channels, in_length = span.shape[1], span.shape[-1]
    # what plots and evaluate see: everything one-shot, the plots window when streamed
    seconds = cfg.plots.spectrogram_seconds if streamed else math.inf
    shown_out = int(min(out_length, seconds * out_rate))
    shown_in = int(min(in_length, seconds * in_rate))
    audio = span.target if features else span  # the audio input.wav holds
    audio_samples = (0 if audio is None else audio.samples.size) if features \
        else in_channels * in_length
    plots = 0
    if draws:
        panel_in = [] if audio is None else [
            (int(min(audio.samples.shape[-1], seconds * audio.sample_rate)), audio.sample_rate)
            if features else (shown_in, span.sample_rate)]
        panels = panel_in + [(shown_out, float(out_rate))] \
            * cfg.plots.spectrogram_channels(out_channels)
        plots = budget.spectrogram_figure_bytes(panels, cfg.plots.window_ms)
    evaluates = evaluate_on and out_rate != in_rate and out_rate.denominator == 1 and not features
    evaluate = shown_out * budget.EVALUATE_BYTES_PER_SAMPLE if evaluates else 0
    wav_sub = cfg.stream.subtype if streamed else cfg.audio.subtype
    output = wav = 0
    if cfg.audio.enabled:
        output += audio_samples * budget.subtype_bytes(cfg.audio.subtype)
        if out_rate.denominator == 1:
            output += out_channels * out_length * budget.subtype_bytes(wav_sub)
        wav = 0 if streamed else out_channels * out_length * budget.WAV_BYTES_PER_SAMPLE
    if evaluates:
        output += shown_out * budget.subtype_bytes(cfg.audio.subtype)  # reference.wav
    # streamed: the window the spectrogram and evaluate read (pipeline.consumers keeps the
    # drawn channels and the evaluated one, input and output)
    window = (in_channels * shown_in + (cfg.plots.spectrogram_channels(out_channels) + 1)
              * shown_out) * budget.FLOAT32 if draws or evaluate_on else 0
    return Estimate(forward, streamed, block_samples if streamed else None,
                    Peak(plots, "plots.spectrogram_seconds" if streamed
                         else "plots.spectrogram"),
                    Peak(evaluate, "evaluate.enabled"), wav,
                    window if streamed else one_shot_kept, output, found.one_shot_macs,
                    found.as_json())
