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

The layer families' rules live in the catalogue beside their families (stack.layers: *_blocks,
registered in their BLOCK_RULES); this module composes them and runs the blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from convscope.stack.build import child_modules
from convscope.stack.layers import convolution_blocks, resampling_blocks, transposed_blocks
from convscope.stack.layers.block_rule import LayerRule, PointwiseRule, Range
from convscope.stack.layers.transposed_blocks import ConvTranspose1dRule  # noqa: F401 (importers)
from convscope.stack.plan import ACTIVATIONS, SNAKES, LayerPlan, leaf_plans

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


# the catalogue families' block rules, by planned layer type
SIMPLE_RULES: dict[str, type[LayerRule]] = {
    **convolution_blocks.BLOCK_RULES, **transposed_blocks.BLOCK_RULES,
    **resampling_blocks.BLOCK_RULES, **{name: PointwiseRule for name in POINTWISE_TYPES}}


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
