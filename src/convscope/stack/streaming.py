"""Exact block-wise forward of a planned stack: hours of audio in bounded memory.

For a block [a, b) of a layer's output, each layer type knows which input samples it depends on
(`needed_input`) and how to compute exactly that block from them (`forward_range`), emulating the
layer's padding at the true signal edges. Walking the stack backwards from an output block gives
every layer's range; walking it forwards computes them. Each block recomputes only a few kernel
widths of context, so the result equals the one-shot forward (to float rounding) at every sample,
edges included, while memory depends on the block size, not the signal length.

Supported: Conv1d (zeros, reflect, replicate padding; int, 'valid' or 'same' padding; any stride,
dilation, groups; causal: all its padding on the left, LayerPlan.left_padding), ConvTranspose1d
(any stride, padding, dilation, output_padding, groups; causal: padding 0 and the planned length
L_in*s cut the right, the bias-only tail included, as the module does),
Upsample (nearest, nearest-exact, linear; integer scale), the pointwise activations (Snake and
SnakeBeta included), and the generator blocks, whose rules are made of their sub-layers' rules:
Sequential chains them, Residual adds its input's range, Parallel sums (or averages) its branches,
and AntiAliasedActivation chains its Kaiser upsample (replicate padding: clamped indices),
activation and Kaiser downsample. `unsupported_reason` names what is not (circular padding needs
the far end of the signal), and the caller falls back to the one-shot forward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import nn

from convscope.stack.build import child_modules
from convscope.stack.plan import ACTIVATIONS, SNAKES, LayerPlan, leaf_plans
from convscope.stack.polyphase import PolyphaseWeight, conv_transpose1d_polyphase, polyphase_weight

Range = tuple[int, int]  # [start, stop) sample indices of one layer's signal
STREAMABLE_PADDING_MODES = ("zeros", "reflect", "replicate")
POINTWISE_TYPES = tuple(ACTIVATIONS) + SNAKES
KAISER_TYPES = ("KaiserUpsample", "KaiserDownsample")


def unsupported_reason(plans: list[LayerPlan]) -> str | None:
    """Why this stack can't be streamed exactly, or None if it can."""
    for plan in leaf_plans(plans):
        if plan.type in POINTWISE_TYPES or plan.type in ("Upsample",) + KAISER_TYPES:
            continue
        if plan.type not in ("Conv1d", "ConvTranspose1d"):
            return f"{plan.key}: {plan.type} has no block-wise rule"
        mode = plan.kwargs.get("padding_mode", "zeros")
        if mode not in STREAMABLE_PADDING_MODES:
            return (f"{plan.key}.padding_mode={mode!r} reads the other end of the signal at each "
                    "edge, which a block does not hold")
    return None


@dataclass(frozen=True)
class LayerRule:
    """How one planned layer maps output ranges to input ranges, and computes a range."""

    plan: LayerPlan
    module: nn.Module

    @property
    def input_length(self) -> int:
        return self.plan.input_shape[-1]

    @property
    def output_length(self) -> int:
        return self.plan.output_shape[-1]

    def needed_input(self, out: Range) -> Range:
        """The real input samples (clipped to the signal) that output range `out` depends on."""
        raise NotImplementedError

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        """Output samples `out` from x, which holds input samples [x_start, x_start + len)."""
        raise NotImplementedError


class PointwiseRule(LayerRule):
    def needed_input(self, out: Range) -> Range:
        return out

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        return self.module(x[..., out[0] - x_start: out[1] - x_start])


class Conv1dRule(LayerRule):
    """Output j reads padded input j*s - left_pad + d*t for taps t in [0, k)."""

    @property
    def left_pad(self) -> int:
        return self.plan.left_padding

    def padded_input(self, out: Range) -> Range:
        kw = self.plan.kwargs
        s, d, k = kw["stride"], kw["dilation"], kw["kernel_size"]
        a, b = out
        return a * s - self.left_pad, (b - 1) * s - self.left_pad + d * (k - 1) + 1

    def needed_input(self, out: Range) -> Range:
        if out[1] <= out[0]:
            return (0, 0)
        lo, hi = self.padded_input(out)
        length = self.input_length
        start, stop = max(lo, 0), min(hi, length)
        if self.plan.kwargs["padding_mode"] == "zeros":
            return (start, max(start, stop))
        # reflect/replicate copy samples near the edge into the padding: include them
        mapped = [self._map(i) for i in (lo, min(hi, 0) - 1, max(lo, length), hi - 1)
                  if lo <= i < hi and (i < 0 or i >= length)]
        if stop > start:
            mapped += [start, stop - 1]
        return (min(mapped), max(mapped) + 1)

    def _map(self, i: int) -> int:
        length = self.input_length
        if self.plan.kwargs["padding_mode"] == "replicate":
            return min(max(i, 0), length - 1)
        return -i if i < 0 else 2 * (length - 1) - i  # reflect (padding < length, checked)

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        kw = self.plan.kwargs
        if out[1] <= out[0]:
            return x.new_zeros((x.shape[0], kw["out_channels"], 0))
        lo, hi = self.padded_input(out)
        padded = self._gather(x, x_start, lo, hi)
        m = self.module
        return F.conv1d(padded, m.weight, m.bias, kw["stride"], 0, kw["dilation"], kw["groups"])

    def _gather(self, x: torch.Tensor, x_start: int, lo: int, hi: int) -> torch.Tensor:
        """Input samples [lo, hi) with the layer's padding where they run past the signal."""
        length = self.input_length
        start, stop = max(lo, 0), min(hi, length)
        parts = []
        if lo < min(hi, 0):
            parts.append(self._pad(x, x_start, range(lo, min(hi, 0))))
        if stop > start:
            parts.append(x[..., start - x_start: stop - x_start])
        if max(lo, length) < hi:
            parts.append(self._pad(x, x_start, range(max(lo, length), hi)))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def _pad(self, x: torch.Tensor, x_start: int, indices: range) -> torch.Tensor:
        if self.plan.kwargs["padding_mode"] == "zeros":
            return x.new_zeros((*x.shape[:-1], len(indices)))
        where = torch.tensor([self._map(i) - x_start for i in indices], device=x.device)
        return x.index_select(-1, where)


class ConvTranspose1dRule(LayerRule):
    """Input i adds weight tap t into output j = i*s - p + d*t (output_padding adds length only)."""

    def needed_input(self, out: Range) -> Range:
        kw = self.plan.kwargs
        s, d, k, p = kw["stride"], kw["dilation"], kw["kernel_size"], kw["padding"]
        a, b = out
        if b <= a:
            return (0, 0)
        first = -((p - d * (k - 1) + a) // -s)  # ceil((a + p - d*(k-1)) / s)
        last = (b - 1 + p) // s
        start, stop = max(first, 0), min(last + 1, self.input_length)
        return (start, max(start, stop))

    @cached_property
    def polyphase(self) -> PolyphaseWeight:
        """The weight as a Conv1d over phases: rules are built per run, the weights fixed."""
        kw = self.plan.kwargs
        return polyphase_weight(self.module.weight.detach(), kw["stride"], kw["dilation"],
                                kw["groups"])

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        kw, m = self.plan.kwargs, self.module
        a, b = out
        start, stop = self.needed_input(out)
        if stop > start:
            first_j = start * kw["stride"] - kw["padding"]  # output index of contributions[0]
            inside = x[..., start - x_start: stop - x_start]
            n_out = (stop - start - 1) * kw["stride"] + self.polyphase.span
            lo, hi = max(a, first_j), min(b, first_j + n_out)
            if (lo, hi) == (a, b):  # inside the signal: no zero-filled edge to assemble
                y = conv_transpose1d_polyphase(inside, self.polyphase, m.bias)
                return y[..., a - first_j: b - first_j]
            contributions = conv_transpose1d_polyphase(inside, self.polyphase)
        y = x.new_zeros((x.shape[0], kw["out_channels"], max(b - a, 0)))
        if stop > start and hi > lo:
            y[..., lo - a: hi - a] = contributions[..., lo - first_j: hi - first_j]
        if m.bias is not None:
            y += m.bias.view(1, -1, 1)
        return y


class UpsampleRule(LayerRule):
    """Integer scale s. nearest(-exact): output j copies input j // s. linear (torch's
    align_corners=False): j reads source (j + 0.5)/s - 0.5, clamped to the signal, and its
    right-hand neighbour."""

    @property
    def scale(self) -> int:
        return self.plan.kwargs["scale_factor"]

    def needed_input(self, out: Range) -> Range:
        a, b = out
        if b <= a:
            return (0, 0)
        if self.plan.kwargs["mode"] != "linear":
            return (a // self.scale, (b - 1) // self.scale + 1)
        left, right, _ = self._source(torch.tensor([a, b - 1]))  # monotone in j
        return (int(left[0]), int(right[1]) + 1)

    def _source(self, j: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Left and right input index and the right one's weight, computed as torch does:
        in float32 from the float scale 1/s (which loses precision past ~2**24 samples)."""
        source = ((j.float() + 0.5) * (1.0 / self.scale) - 0.5).clamp(min=0)
        left = source.long()
        right = (left + 1).clamp(max=self.input_length - 1)
        return left, right, (source - left.float()).clamp(0, 1)

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        a, b = out
        j = torch.arange(a, b, device=x.device)
        if self.plan.kwargs["mode"] != "linear":
            return x.index_select(-1, j // self.scale - x_start)
        left, right, weight = self._source(j)
        weight = weight.to(x.dtype)
        return (x.index_select(-1, left - x_start) * (1 - weight)
                + x.index_select(-1, right - x_start) * weight)


def _clamped(x: torch.Tensor, x_start: int, lo: int, hi: int, length: int) -> torch.Tensor:
    """Input samples [lo, hi) with replicate padding: indices past either edge repeat the edge."""
    where = torch.arange(lo, hi, device=x.device).clamp(0, length - 1) - x_start
    return x.index_select(-1, where)


def _clamp_range(lo: int, hi: int, length: int) -> Range:
    """The real samples that replicate-padded indices [lo, hi) read."""
    if hi <= lo:
        return (0, 0)
    return (min(max(lo, 0), length - 1), min(max(hi - 1, 0), length - 1) + 1)


class KaiserUpsampleRule(LayerRule):
    """BigVGAN's UpSample1d as a transposed conv over the replicate-extended input: extended
    sample i (from -pad to L + pad) adds filter tap t into output j = i*r + t - P, where
    P = trim_left - pad*r is what the trim removes beyond the padding's own outputs."""

    def _source(self, out: Range) -> Range:
        m = self.module
        r, k = m.ratio, m.kernel_size
        shift = m.trim_left - m.pad * r
        a, b = out
        lo = -((k - 1 - shift - a) // r)  # ceil((a + P - (k-1)) / r)
        hi = (b - 1 + shift) // r + 1
        return max(lo, -m.pad), min(hi, self.input_length + m.pad)

    def needed_input(self, out: Range) -> Range:
        return (0, 0) if out[1] <= out[0] else _clamp_range(*self._source(out), self.input_length)

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        m, (a, b) = self.module, out
        if b <= a:
            return x.new_zeros((*x.shape[:-1], 0))
        lo, hi = self._source(out)
        extended = _clamped(x, x_start, lo, hi, self.input_length)
        channels = x.shape[1]
        y = m.ratio * F.conv_transpose1d(extended, m.filter.expand(channels, -1, -1),
                                         stride=m.ratio, groups=channels)
        first = lo * m.ratio - (m.trim_left - m.pad * m.ratio)  # output index of y[..., 0]
        return y[..., a - first: b - first]


class KaiserDownsampleRule(LayerRule):
    """BigVGAN's DownSample1d: output j reads replicate-padded input j*r - pad_left + t."""

    def _source(self, out: Range) -> Range:
        m, (a, b) = self.module, out
        return a * m.ratio - m.pad_left, (b - 1) * m.ratio - m.pad_left + m.kernel_size

    def needed_input(self, out: Range) -> Range:
        return (0, 0) if out[1] <= out[0] else _clamp_range(*self._source(out), self.input_length)

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        m = self.module
        if out[1] <= out[0]:
            return x.new_zeros((*x.shape[:-1], 0))
        padded = _clamped(x, x_start, *self._source(out), self.input_length)
        channels = x.shape[1]
        return F.conv1d(padded, m.filter.expand(channels, -1, -1), stride=m.ratio,
                        groups=channels)


@dataclass(frozen=True)
class BlockRule(LayerRule):
    """A block's rule, made of its children's rules (`parts`, in the plan's order)."""

    parts: tuple[LayerRule, ...] = ()

    def empty(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros((x.shape[0], self.plan.output_shape[1], 0))


class ChainRule(BlockRule):
    """Sequential and AntiAliasedActivation: the parts one after another."""

    def _ranges(self, out: Range) -> tuple[Range, list[Range]]:
        """The chain's input range and each part's output range, first part first."""
        ranges, want = [], out
        for part in reversed(self.parts):
            ranges.append(want)
            want = part.needed_input(want)
        return want, ranges[::-1]

    def needed_input(self, out: Range) -> Range:
        return self._ranges(out)[0]

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        _, ranges = self._ranges(out)
        for part, rng in zip(self.parts, ranges):
            x = part.forward_range(x, x_start, rng)
            x_start = rng[0]
        return x


def _hull(*ranges: Range) -> Range:
    """The smallest range holding every non-empty one of `ranges`."""
    full = [r for r in ranges if r[1] > r[0]]
    return (min(r[0] for r in full), max(r[1] for r in full)) if full else (0, 0)


class ResidualRule(BlockRule):
    """x + inner(x): the output range of x itself, plus what the inner chain reads."""

    def needed_input(self, out: Range) -> Range:
        return _hull(out, self.parts[0].needed_input(out))

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        if out[1] <= out[0]:
            return self.empty(x)
        inner = self.parts[0].forward_range(x, x_start, out)
        return x[..., out[0] - x_start: out[1] - x_start] + inner


class ParallelRule(BlockRule):
    """Branches on one input: what any branch reads; their sum, or its mean, as forward does."""

    def needed_input(self, out: Range) -> Range:
        return _hull(*(part.needed_input(out) for part in self.parts))

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        if out[1] <= out[0]:
            return self.empty(x)
        total = sum(part.forward_range(x, x_start, out) for part in self.parts)
        return total / len(self.parts) if self.plan.kwargs["reduce"] == "mean" else total


SIMPLE_RULES: dict[str, type[LayerRule]] = {
    "Conv1d": Conv1dRule, "ConvTranspose1d": ConvTranspose1dRule, "Upsample": UpsampleRule,
    "KaiserUpsample": KaiserUpsampleRule, "KaiserDownsample": KaiserDownsampleRule,
    **{name: PointwiseRule for name in POINTWISE_TYPES}}


def layer_rules(plans: list[LayerPlan], stack: nn.Sequential) -> list[LayerRule]:
    """One rule per layer; unsupported_reason has already turned away any other type."""
    return [layer_rule(plan, module) for plan, module in zip(plans, stack)]


def layer_rule(plan: LayerPlan, module: nn.Module) -> LayerRule:
    if not plan.children:
        return SIMPLE_RULES[plan.type](plan, module)
    parts = tuple(layer_rule(child, submodule)
                  for child, (_, submodule) in zip(plan.children, child_modules(plan, module)))
    if plan.type == "Residual":  # its sub-stack is one chain
        chain = ChainRule(plan, module.inner, parts)
        return ResidualRule(plan, module, (chain,))
    if plan.type == "Parallel":
        return ParallelRule(plan, module, parts)
    return ChainRule(plan, module, parts)  # Sequential, AntiAliasedActivation


@dataclass(frozen=True)
class BlockPlan:
    """The ranges one block computes: the raw input it reads and each layer's output range."""

    input_range: Range
    layer_ranges: list[Range]


def plan_blocks(rules: list[LayerRule], block_length: int) -> Iterator[BlockPlan]:
    """Blocks of `block_length` final-output samples, in order.

    Each intermediate layer's range is widened back to where the previous block stopped (and to
    the layer's end in the last block), so every sample of every layer is computed in order and
    can be handed on exactly once, for plots, even where the next layer skips samples.
    """
    done = [0] * len(rules)  # per layer: samples already computed in earlier blocks
    total = rules[-1].output_length
    for a in range(0, total, block_length):
        b = min(a + block_length, total)
        last_block = b == total
        want: Range = (a, b)
        ranges: list[Range] = []
        for i in range(len(rules) - 1, -1, -1):
            length = rules[i].output_length
            lo = max(0, min(want[0], done[i]))
            hi = length if last_block else min(max(want[1], lo), length)
            ranges.append((lo, hi))
            want = rules[i].needed_input((lo, hi))
        ranges.reverse()
        for i, (_, hi) in enumerate(ranges):
            done[i] = max(done[i], hi)
        yield BlockPlan(want, ranges)


class InputWindow:
    """Sequential reader over blocks of the input signal that serves any forward-moving range."""

    def __init__(self, blocks: Iterator[torch.Tensor]):
        self._blocks = blocks
        self._buffer: torch.Tensor | None = None  # (N, C, n) holding samples [start, ...)
        self._start = 0

    def read(self, rng: Range) -> tuple[torch.Tensor, int]:
        """Samples covering `rng` (may hold more) and the index of their first sample."""
        lo, hi = rng
        parts = [] if self._buffer is None else [self._buffer]
        end = self._start + sum(part.shape[-1] for part in parts)
        while end < hi or not parts:
            block = next(self._blocks)
            parts.append(block)
            end += block.shape[-1]
        buffer = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        if lo > self._start:  # drop what no later block needs (ranges only move forward)
            buffer = buffer[..., lo - self._start:]
            self._start = lo
        self._buffer = buffer
        return buffer, self._start


# on_output(layer index, first sample index, samples (N, C, n)) receives every layer's samples
# exactly once and in order; the last layer's are the stack's output.
OutputSink = Callable[[int, int, torch.Tensor], None]


def stream_forward(rules: list[LayerRule], blocks: Iterator[torch.Tensor], block_length: int,
                   on_output: OutputSink) -> None:
    """Run the stack block by block over the input `blocks` (N, C, n) tensors, in order."""
    window = InputWindow(blocks)
    emitted = [0] * len(rules)
    with torch.no_grad():
        for block in plan_blocks(rules, block_length):
            x, x_start = window.read(block.input_range)
            for i, (rule, out) in enumerate(zip(rules, block.layer_ranges)):
                x = rule.forward_range(x, x_start, out)
                x_start = out[0]
                if out[1] > emitted[i]:
                    on_output(i, emitted[i], x[..., emitted[i] - out[0]:])
                    emitted[i] = out[1]
