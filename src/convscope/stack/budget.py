"""Pre-flight figures of a run that are not the forward's: shape arithmetic over the output.

The forward's memory and MACs (one shot, and one streamed block) are convscope.estimate's
(stack/estimate.py: the model's own ops on fake tensors), for a config stack as for any module.
What follows the forward is sized here from the output's shape and rate: the plots (the
spectrogram's STFT frames), the evaluate stage (the reference resampled to the output rate and
the STFTs of the metrics), writing the WAVs and their bytes on disk, and what a config stack's
one-shot trace keeps. pipeline/preflight.py decides from the sum whether to stream, how long a
block may be, and what to refuse. Coefficients are bytes per element of the arrays the code
really makes; tests/test_budget.py checks the total against measured peak RSS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from convscope.stack.plan import CONV_TYPES, LayerPlan, leaf_plans
from convscope.stack.rows import planned_conv
from convscope.text import fmt_bytes, fmt_macs

FLOAT32 = 4
FLOAT64 = 8
# Bytes per sample of a WAV subtype (soundfile's names); anything else counts as 4.
SUBTYPE_BYTES = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3,
                 "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
# Evaluate stage, bytes per output sample: soxr's float64 result and its fitted copy, both
# signals as float64 (twice: cut, then trimmed), and two STFT power spectra at hop n_fft/4
# (complex128 frames 4x overlapped, their |.|^2 and dB arrays).
EVALUATE_BYTES_PER_SAMPLE = 2 * FLOAT64 + 2 * FLOAT64 + 2 * (4 * 16 + 2 * 4 * FLOAT64) // 2
# Spectrogram of one panel (plots/layers.spectrogram_db): the float64 frames, their mean-removed
# and windowed copies, the complex128 rFFT and its magnitude, per frame sample.
SPECTROGRAM_BYTES_PER_FRAME_SAMPLE = 3 * FLOAT64 + 16 // 2 + FLOAT64 // 2
MAX_SPECTROGRAM_FRAMES = 2000  # plots/layers.py's bound on the frames of one panel
# WAV writing (audio/wav.write_wav): a float32 copy scaled by the gain, then the encoded frames
WAV_BYTES_PER_SAMPLE = FLOAT32 + 4


def numel(shape) -> int:
    return math.prod(int(n) for n in shape)


@dataclass(frozen=True)
class Peak:
    """A memory figure and the config key of the layer (or setting) that dominates it."""

    bytes: int
    key: str


@dataclass(frozen=True)
class Estimate:
    """What a run will need, known before its forward runs."""

    forward: Peak  # convscope.estimate's peak of the forward: one-shot or one block
    streamed: bool
    block_samples: int | None  # output samples per block of a streamed config stack
    plots: Peak
    evaluate: Peak
    wav_bytes: int  # peak of writing the WAVs (one-shot: all channels at once)
    kept_bytes: int  # what stays in memory through plots, WAVs and evaluate
    output_bytes: int  # WAVs on disk
    macs: int  # convscope.estimate's MACs of the whole forward (streamed or not)
    model: dict  # convscope.estimate's figures (ModelEstimate.as_json())

    @property
    def peak_bytes(self) -> int:
        """The run's peak: what the run keeps (a one-shot trace's outputs, a streamed run's
        captured window), which lives through the forward and the stages after it, plus the
        larger of the forward's peak and the largest stage. One shot, the forward's peak counts
        again the tensors its trace keeps while they are live: at most its input and output."""
        after = max(self.plots.bytes, self.evaluate.bytes, self.wav_bytes)
        return self.kept_bytes + max(self.forward.bytes, after)

    def dominant(self) -> Peak:
        """The stage whose figure sets the peak (the forward's layer key, or a stage's key)."""
        stages = [self.forward, self.plots, self.evaluate]
        return max(stages, key=lambda peak: peak.bytes)

    def summary(self) -> str:
        mode = f"per block of {self.block_samples} samples" if self.streamed else "one-shot"
        if self.streamed and self.block_samples is None:
            mode = "per block"
        return (f"forward peak {fmt_bytes(self.forward.bytes)} ({mode}), plots "
                f"{fmt_bytes(self.plots.bytes)}, evaluate {fmt_bytes(self.evaluate.bytes)}, "
                f"run peak {fmt_bytes(self.peak_bytes)}, output {fmt_bytes(self.output_bytes)} "
                f"on disk, {fmt_macs(self.macs)}")

    def as_json(self) -> dict:
        """shapes.json["estimate"], the same keys for every run: convscope.estimate's figures,
        then the run's (its stages, its peak, output samples per streamed block)."""
        return {**self.model, "mode": "streamed" if self.streamed else "one-shot",
                "block_output_samples": self.block_samples,
                "forward_bytes": self.forward.bytes, "forward_key": self.forward.key,
                "plots_bytes": self.plots.bytes, "evaluate_bytes": self.evaluate.bytes,
                "wav_bytes": self.wav_bytes, "kept_bytes": self.kept_bytes,
                "peak_bytes": self.peak_bytes, "output_bytes": self.output_bytes,
                "macs": self.macs}


def trace_kept_bytes(plans: list[LayerPlan]) -> int:
    """What a config stack's one-shot trace keeps for the figures (pipeline.oneshot): its input
    and every top-level layer's output, float32. Shapes from the plans: bookkeeping of what is
    kept, not a model of the forward's allocations (those are convscope.estimate's)."""
    return FLOAT32 * (numel(plans[0].input_shape) + sum(numel(p.output_shape) for p in plans))


def largest_layer(plans: list[LayerPlan]) -> str:
    """The key of the leaf with the largest output: what a memory refusal of a config stack
    names (the forward's figure itself is convscope.estimate's)."""
    return max(leaf_plans(plans), key=lambda leaf: numel(leaf.output_shape)).key


def parameter_count(leaf: LayerPlan) -> int:
    """The weights and biases building `leaf` allocates: a conv's, counted on the layer made on
    the meta device (rows.planned_conv, which names a kernel torch cannot size), a Snake's
    alpha per channel; other layers hold none worth counting."""
    if leaf.type in CONV_TYPES:
        return sum(p.numel() for p in planned_conv(leaf).parameters())
    return leaf.input_shape[1] if leaf.type in ("Snake", "SnakeBeta") else 0


def parameter_bytes(plans: list[LayerPlan]) -> Peak:
    """The float32 bytes building the stack allocates, named after its largest layer."""
    leaves = leaf_plans(plans)
    largest = max(leaves, key=parameter_count)
    return Peak(FLOAT32 * sum(parameter_count(leaf) for leaf in leaves), largest.key)


def spectrogram_bytes(samples: int, rate: float, window_ms: float) -> tuple[int, int]:
    """One panel of plots/layers.spectrogram_db, (transient, kept): frames x n_fft of float64
    work arrays while it is computed, with the hop that bounds the frames at
    MAX_SPECTROGRAM_FRAMES, and its float64 dB image, kept until the figure is drawn."""
    n_fft = max(16, int(round(rate * window_ms / 1000)))
    hop = max(n_fft // 4, math.ceil(samples / MAX_SPECTROGRAM_FRAMES), 1)
    frames = max(1, (max(samples, n_fft) - n_fft) // hop + 1)
    return (int(frames * n_fft * SPECTROGRAM_BYTES_PER_FRAME_SAMPLE),
            frames * (n_fft // 2 + 1) * FLOAT64)


def spectrogram_figure_bytes(panels: list[tuple[int, float]], window_ms: float) -> int:
    """The spectrogram figure: every panel's (samples, rate) dB image is kept for one colour
    scale, beside the largest panel's transient arrays."""
    sizes = [spectrogram_bytes(samples, rate, window_ms) for samples, rate in panels]
    return max(transient for transient, _ in sizes) + sum(kept for _, kept in sizes)


def subtype_bytes(subtype: str) -> int:
    return SUBTYPE_BYTES.get(subtype, 4)
