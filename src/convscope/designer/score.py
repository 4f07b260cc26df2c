"""The designer's scores of one candidate: cost, delay and two measured artifact levels.

- macs: multiply-accumulates per second of output audio for the channel schedule, by the
  arithmetic of stack.rows.count_macs (checked against FlopCounterMode): a ConvTranspose1d costs
  L_in x in x out x kernel, so per second it is the layer's input rate x in x out x kernel.
- rf_ms, lookahead_ms: receptive field and lookahead in stack-input samples (frames), as
  stack.receptive defines them, converted to ms at the input rate. Computed here by carrying each
  output phase's input interval back through the layers (numpy, all phases at once): with kernel
  >= stride every interval stays contiguous, so the first and last index are the whole story.
- image_db: the best interpolating init's image level (stack.inits: sinc, linear or box, each
  on the exact geometry that holds it): power above the input's Nyquist over power below for a
  white-noise input, from the stack's impulse response. One channel suffices: an interpolating
  init gives every output channel the average of its inputs, interpolated.
- tone_db: the stride tone of torch's random init on a constant input, measured as the artifact
  stage does (scripts/plot_artifacts.py): build, run, trim 20 ms, quality.metrics.tone_level_db.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Optional

import numpy as np
import torch

from convscope.designer.candidates import Candidate, Layer
from convscope.designer.stacks import stack_layers
from convscope.errors import ConvscopeError
from convscope.quality.metrics import ratio_db, tone_level_db, trim_edges
from convscope.stack.backends import safe_kernels
from convscope.stack.build import build_stack
from convscope.stack.inits import InitSpec, check_init, interpolator
from convscope.stack.plan import LayerPlan, plan_stack
from convscope.stack.rows import count_macs

INIT_PREFERENCES = (("sinc", "linear", "box"), ("linear", "box"))  # per layer, first that fits
# The constant input: 0.2 s (at least 16 inputs) leaves the period-hop pattern many periods
# after the 20 ms edges; tone_level_db's cost grows with length x hop/2 lines
TONE_SECONDS = 0.2
MIN_TONE_INPUT = 16
TONE_MAX_SAMPLES = 2_000_000  # the longest tone probe output measured (see tone_is_measurable)
DIRECT_CONVOLVE_MAX = 1 << 22  # multiply-adds of np.convolve before overlap-add FFTs are faster


@dataclass(frozen=True)
class Scores:
    macs: int  # per second of audio
    rf: int  # stack-input samples (frames)
    lookahead: int
    rf_ms: float
    lookahead_ms: float
    image_db: float
    init: str  # the interpolating init(s) image_db was measured with
    tone_db: Optional[float] = None  # measured for the top candidates only
    # per layer (init, padding, output_padding) of that measurement: what best.yaml runs
    inits: tuple[tuple[str, int, int], ...] = ()


@lru_cache(maxsize=None)
def macs_per_input_sample(c_in: int, c_out: int, layer: Layer) -> int:
    """count_macs of the layer planned on a length-1 input: its MACs grow linearly with L_in."""
    kwargs = dict(in_channels=c_in, out_channels=c_out, kernel_size=layer.kernel,
                  stride=layer.stride, padding=layer.padding,
                  output_padding=layer.output_padding, dilation=1, groups=1, bias=True,
                  padding_mode="zeros")
    plan = LayerPlan(0, "ConvTranspose1d", kwargs, (1, c_in, 1), (1, c_out, layer.stride), "",
                     (layer.stride, 1))
    return count_macs(plan)


def macs_per_second(candidate: Candidate, schedule: list[tuple[int, int]],
                    input_rate: Fraction) -> int:
    """Per second of output audio (= per input_rate stack-input samples)."""
    total, rate = Fraction(0), Fraction(input_rate)
    for layer, (c_in, c_out) in zip(candidate.layers, schedule):
        total += rate * macs_per_input_sample(c_in, c_out, layer)
        rate *= layer.stride
    return round(total)


def reach(candidate: Candidate) -> tuple[int, int]:
    """(receptive field, lookahead) of the stack's output, in stack-input samples.

    Output j of a layer reads inputs i with 0 <= j + p - i*s <= k - 1, i.e. i in
    [ceil((j+p-k+1)/s), floor((j+p)/s)]; an interval of outputs reads the hull of theirs."""
    period = math.prod(candidate.strides)
    first = last = np.arange(period)
    for layer in reversed(candidate.layers):
        k, s, p = layer.kernel, layer.stride, layer.padding
        first, last = -((-(first + p - k + 1)) // s), (last + p) // s
    now = np.arange(period) // period  # the last stack-input index not in the future: 0
    ahead = np.maximum(0, last - np.maximum(now, first - 1))
    return int((last - first + 1).max()), int(ahead.max())


@lru_cache(maxsize=None)
def init_geometry(name: str, stride: int, kernel: int) -> Optional[tuple[int, int]]:
    """The smallest exact (padding, output_padding) that holds init `name`, by check_init's
    rules, or None: 2p - op = kernel - stride with 0 <= op < stride."""
    kw = dict(kernel_size=kernel, stride=stride, dilation=1)
    for op in range(stride):
        if (kernel - stride + op) % 2 or kernel - stride + op < 0:
            continue
        padding = (kernel - stride + op) // 2
        try:
            check_init("model.layers.0", InitSpec(name), "ConvTranspose1d", kw, padding)
        except ConvscopeError:
            continue
        return padding, op
    return None


def init_choices(candidate: Candidate) -> list[list[tuple[str, int, int]]]:
    """Per preference order, each layer's first init that fits: (name, padding, output_padding)."""
    choices = []
    for order in INIT_PREFERENCES:
        layers = []
        for layer in candidate.layers:
            name, geometry = next((n, g) for n in order
                                  if (g := init_geometry(n, layer.stride, layer.kernel)))
            layers.append((name, *geometry))
        if layers not in choices:
            choices.append(layers)
    return choices


def impulse_response(candidate: Candidate, inits: list[tuple[str, int, int]]) -> np.ndarray:
    """The stack's output for one unit input sample, uncropped: a ConvTranspose1d puts
    x[i] * w at outputs i*s - p + j, so each layer zero-stuffs by s and convolves with w."""
    h = np.ones(1)
    for layer, (name, padding, _) in zip(candidate.layers, inits):
        stuffed = np.zeros((len(h) - 1) * layer.stride + 1)
        stuffed[::layer.stride] = h
        taps = _kernel(name, layer.stride, layer.kernel, padding)
        if len(stuffed) * len(taps) > DIRECT_CONVOLVE_MAX:  # large ratios: O(n log n), not O(n k)
            from scipy.signal import oaconvolve  # scipy: librosa's dependency, loaded when needed

            h = oaconvolve(stuffed, taps)
        else:
            h = np.convolve(stuffed, taps)
    return h


@lru_cache(maxsize=None)
def _kernel(name: str, stride: int, kernel: int, padding: int) -> np.ndarray:
    """stack.inits.interpolator, once per geometry (candidates share layers)."""
    return interpolator(InitSpec(name), stride, kernel, padding)


def image_db(h: np.ndarray, output_rate: float, input_rate: float) -> float:
    """quality.metrics.image_level_db's ratio for white noise in, whose output spectrum is
    |H(f)|^2: integrated exactly from h's autocorrelation r, since the power of |f| < f_c is
    sum_k r[k] sin(w_c k) / (pi k) (w_c = 2 pi f_c / rate; r[0] w_c / pi at k = 0) of r[0]."""
    n = len(h)
    spectrum = np.fft.rfft(h, 2 * n)
    r = np.fft.irfft(np.abs(spectrum) ** 2, 2 * n)[:n]  # r[0..n-1]; the rest is r's mirror
    w_c = np.pi * input_rate / output_rate
    k = np.arange(1, n)
    below = r[0] * w_c / np.pi + 2 * float(np.sum(r[1:] * np.sin(w_c * k) / (np.pi * k)))
    total = float(r[0])
    return ratio_db(max(total - below, 0.0), below)


def best_image(candidate: Candidate, output_rate: float, input_rate: float
               ) -> tuple[float, str, tuple[tuple[str, int, int], ...]]:
    """(image dB, init label, per-layer inits) of the init choice with the lowest images."""
    scored = []
    for inits in init_choices(candidate):
        names = [name for name, _, _ in inits]
        label = names[0] if len(set(names)) == 1 else ",".join(names)
        scored.append((image_db(impulse_response(candidate, inits), output_rate, input_rate),
                       label, tuple(inits)))
    return min(scored)


def score(candidate: Candidate, schedule: list[tuple[int, int]], input_rate: Fraction,
          output_rate: int) -> Scores:
    rf, ahead = reach(candidate)
    image, init, inits = best_image(candidate, output_rate, float(input_rate))
    ms = 1000 / float(input_rate)
    return Scores(macs_per_second(candidate, schedule, input_rate), rf, ahead, rf * ms,
                  ahead * ms, image, init, inits=inits)


def tone_input_length(input_rate: Fraction) -> int:
    return max(MIN_TONE_INPUT, math.ceil(TONE_SECONDS * input_rate))


def tone_is_measurable(ratio: int, input_rate: Fraction) -> bool:
    """Whether the tone probe's output (every candidate's: they share the ratio) stays within
    TONE_MAX_SAMPLES: tone_level_db's cost grows with its length x the hop (hop=720720 gives
    11.5 million samples of 360360 lines: hours)."""
    return tone_input_length(input_rate) * ratio <= TONE_MAX_SAMPLES


def stride_tone_db(candidate: Candidate, schedule: list[tuple[int, int]], input_rate: Fraction,
                   output_rate: int, seed: int) -> float:
    """Random init (seeded), constant input on every channel: the stride tone of the output's
    channel 0 with 20 ms trimmed at both ends, as the artifact stage measures it."""
    length = tone_input_length(input_rate)
    shape = (1, schedule[0][0], length)
    stack = build_stack(plan_stack(stack_layers(candidate, schedule), shape), seed)
    with torch.no_grad(), safe_kernels(stack):  # candidates' large strides: see safe_kernels
        out = stack(torch.ones(shape))[0, 0].numpy()
    edge = output_rate // 50
    return tone_level_db(trim_edges(out, edge), output_rate, math.prod(candidate.strides))
