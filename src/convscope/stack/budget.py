"""Pre-flight resource estimate of a run: pure arithmetic over a plan, before anything is built.

Peak memory of the forward (one shot: the input and every layer's output, which the trace keeps,
plus the largest call's transient buffers; streamed: one block of every layer), of the plots (the
spectrogram's STFT frames), of the evaluate stage (the reference resampled to the output rate and
the STFTs of the metrics), the bytes written on disk (WAVs) and the MACs. The pipeline decides
from these figures whether to stream, how long a block may be, and what to refuse
(pipeline/preflight.py). Coefficients are bytes per element of the arrays the code really makes;
tests/test_budget.py checks the totals against measured peak RSS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from convscope.stack.layers import KERNEL_SPANS, WORKSPACES
from convscope.stack.plan import LayerPlan, leaf_plans
from convscope.stack.rows import count_macs
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
# Arrays alive at once inside a generator block (Parallel of Sequential of Residual): the
# block's input, the branches' running sum, a residual's input, a leaf's input and output
LIVE_IN_BLOCK = 5


def numel(shape) -> int:
    return math.prod(int(n) for n in shape)


@dataclass(frozen=True)
class Peak:
    """A memory figure and the config key of the layer (or setting) that dominates it."""

    bytes: int
    key: str


@dataclass(frozen=True)
class Estimate:
    """What a run will need, known before anything is built."""

    forward: Peak  # the forward pass: one-shot or one block
    streamed: bool
    block_samples: int | None  # output samples per block when streamed
    plots: Peak
    evaluate: Peak
    wav_bytes: int  # peak of writing the WAVs (one-shot: all channels at once)
    kept_bytes: int  # what stays in memory through plots, WAVs and evaluate (one-shot trace)
    output_bytes: int  # WAVs on disk
    macs: int

    @property
    def peak_bytes(self) -> int:
        """The run's peak: what the forward keeps, plus the largest stage that follows it."""
        after = max(self.plots.bytes, self.evaluate.bytes, self.wav_bytes)
        if self.streamed:  # the captured window lives through the blocks and the stages after
            return self.kept_bytes + max(self.forward.bytes, after)
        return max(self.forward.bytes, self.kept_bytes + after)

    def dominant(self) -> Peak:
        """The stage whose figure sets the peak (the forward's layer key, or a stage's key)."""
        stages = [self.forward, self.plots, self.evaluate]
        return max(stages, key=lambda peak: peak.bytes)

    def summary(self) -> str:
        mode = f"per block of {self.block_samples} samples" if self.streamed else "one-shot"
        return (f"forward peak {fmt_bytes(self.forward.bytes)} ({mode}), plots "
                f"{fmt_bytes(self.plots.bytes)}, evaluate {fmt_bytes(self.evaluate.bytes)}, "
                f"run peak {fmt_bytes(self.peak_bytes)}, output {fmt_bytes(self.output_bytes)} "
                f"on disk, {fmt_macs(self.macs)}")

    def as_json(self) -> dict:
        return {"mode": "streamed" if self.streamed else "one-shot",
                "block_samples": self.block_samples,
                "forward_bytes": self.forward.bytes, "forward_key": self.forward.key,
                "plots_bytes": self.plots.bytes, "evaluate_bytes": self.evaluate.bytes,
                "wav_bytes": self.wav_bytes, "kept_bytes": self.kept_bytes,
                "peak_bytes": self.peak_bytes, "output_bytes": self.output_bytes,
                "macs": self.macs}


def workspace_elements(leaf: LayerPlan) -> int:
    """Transient elements torch's CPU kernel allocates for one call: Conv1d's im2col columns
    (C_in·k per output sample), ConvTranspose1d's col2im columns (C_out·k per input sample), and
    an output-sized temporary for the other layers that make one (interpolation, blocks).
    The families own their kernels' figures (stack.layers.WORKSPACES)."""
    workspace = WORKSPACES.get(leaf.type)
    return workspace(leaf) if workspace else numel(leaf.output_shape)


def one_shot_forward(plans: list[LayerPlan]) -> Peak:
    """The one-shot trace: input and every top-level output stay alive; the largest call adds
    its output (inside a block the running result sits beside it) and its workspace."""
    kept = numel(plans[0].input_shape) + sum(numel(plan.output_shape) for plan in plans)
    worst = max(leaf_plans(plans), key=lambda leaf: workspace_elements(leaf)
                + numel(leaf.output_shape))
    transient = workspace_elements(worst) + (numel(worst.output_shape) if worst.path else 0)
    return Peak(FLOAT32 * (kept + transient), _largest_layer(plans).key)


def _largest_layer(plans: list[LayerPlan]) -> LayerPlan:
    return max(leaf_plans(plans), key=lambda leaf: numel(leaf.output_shape)
               + workspace_elements(leaf))


def elements_per_output_sample(plans: list[LayerPlan]) -> float:
    """Elements every layer holds per sample of the stack's output, in one block."""
    last = max(1, plans[-1].output_shape[-1])
    leaves = leaf_plans(plans)
    held = _held_at_once([numel(leaf.output_shape) for leaf in leaves],
                         [workspace_elements(leaf) for leaf in leaves],
                         [numel(plan.output_shape) for plan in plans])
    return (numel(plans[0].input_shape) + held) / last


def _held_at_once(outputs: list[int], workspaces: list[int], top: list[int]) -> int:
    """Elements alive at once, from each leaf's output and workspace and each top-level output:
    all of them for a flat stack; in a deep one (a vocoder's generator blocks: over a hundred
    leaves) at most every top-level output (a sink may hold a block of each), LIVE_IN_BLOCK
    arrays the size of the largest leaf output and one call's workspace (calls run one by one).
    """
    every = sum(outputs) + sum(workspaces)
    return min(every, sum(top) + LIVE_IN_BLOCK * max(outputs, default=0)
               + max(workspaces, default=0))


def block_forward(plans: list[LayerPlan], block_samples: int) -> Peak:
    """One streamed block: every layer's share of `block_samples` output samples, plus each
    layer's context (its kernel span) on either side."""
    last = max(1, plans[-1].output_shape[-1])

    def held(plan: LayerPlan, elements: int) -> int:  # `elements` over the whole signal
        length = plan.output_shape[-1]
        share = math.ceil(block_samples * length / last) + 2 * _span(plan)
        return int(elements / max(1, length) * min(share, length))

    leaves = leaf_plans(plans)
    total = _held_at_once([held(leaf, numel(leaf.output_shape)) for leaf in leaves],
                          [held(leaf, workspace_elements(leaf)) for leaf in leaves],
                          [held(plan, numel(plan.output_shape)) for plan in plans])
    share_in = math.ceil(block_samples * plans[0].input_shape[-1] / last) + 1
    total += plans[0].input_shape[1] * min(share_in, plans[0].input_shape[-1])
    return Peak(2 * FLOAT32 * total, _largest_layer(plans).key)  # 2: input slices and outputs


def _span(leaf: LayerPlan) -> int:
    """The samples one kernel window covers: the family's (stack.layers.KERNEL_SPANS), else 1."""
    span = KERNEL_SPANS.get(leaf.type)
    return span(leaf) if span else 1


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


def macs(plans: list[LayerPlan]) -> int:
    return sum(count_macs(plan) for plan in plans)
