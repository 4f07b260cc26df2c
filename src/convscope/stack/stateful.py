"""Stateful chunked streaming: chunks of any size (one sample included) through per-layer state,
every sample of every layer computed exactly once.

Each layer becomes a cell with `push(chunk) -> new output samples` and `flush() -> the rest` (at
the end of the signal). A cell emits an output sample as soon as every input sample it depends on
has arrived, in order, and keeps only what later outputs still need:

- Conv1d: the tail of its (zero-padded) input from the next output's first tap on. The left
  padding is zeros before the first sample, the right padding is appended at flush, and outputs a
  stride skips are skipped as they arrive (the stride phase carries across chunks).
- ConvTranspose1d: each input chunk is transposed-convolved once and overlap-added into an
  accumulator; an output is final once no later input can add to it. The first `padding` samples
  are trimmed, and flush emits the rest, output_padding's bias-only samples included.
- pointwise activations (Snake, SnakeBeta, Hardtanh...): sample by sample, no state.
- Upsample (integer scale): nearest has no state; linear keeps the sample its next output blends.
- Sequential chains cells; Parallel (and Residual, the sum of an identity and its inner chain)
  keeps a delay line per branch: the branches lag their input by different amounts, so the sum
  waits until every branch has a sample for the same time.

So the concatenated outputs (with the flush) are the one-shot forward, sample for sample: no time
shift to undo. What a non-causal stack does cost is latency: output j comes out only once the
input samples it depends on have arrived, `stack.receptive`'s lookahead after its own time.
A causal stack (lookahead 0) emits each output with the input sample of its own time.

Not covered (ConvscopeError naming the layer and stream.mode): padding that copies signal samples
into the padding (reflect, replicate, circular; AntiAliasedActivation's Kaiser filters replicate
the edge samples) and any other layer type.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from convscope.errors import ConvscopeError
from convscope.stack.build import child_modules
from convscope.stack.causal import CausalConv1d, CausalConvTranspose1d
from convscope.stack.plan import ACTIVATIONS, SNAKES, LayerPlan

POINTWISE_TYPES = tuple(ACTIVATIONS) + SNAKES


class _Tail:
    """Samples [start, end) of one signal that a cell still needs. `drop(i)` forgets samples
    before i; i may lie past `end` (a stride skips them): those are skipped as they arrive."""

    def __init__(self) -> None:
        self.data: Optional[torch.Tensor] = None
        self.start = 0
        self.end = 0  # samples received so far

    def append(self, x: torch.Tensor) -> None:
        skip = min(max(self.start - self.end, 0), x.shape[-1])
        self.end += x.shape[-1]
        x = x[..., skip:]
        self.data = x if self.data is None else torch.cat([self.data, x], dim=-1)

    def window(self, lo: int, hi: int) -> torch.Tensor:
        return self.data[..., lo - self.start: hi - self.start]

    def drop(self, upto: int) -> None:
        if upto > self.start:
            if self.data is not None:
                self.data = self.data[..., upto - self.start:]
            self.start = upto

    def nbytes(self) -> int:
        return 0 if self.data is None else self.data.numel() * self.data.element_size()


class Cell:
    """One layer's streaming state. push and flush return (N, out_channels, n) tensors."""

    out_channels: int
    _like: Optional[torch.Tensor] = None  # a zero-length tensor of the stream's N, dtype, device

    def push(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def flush(self) -> torch.Tensor:
        return self.empty()

    def remember(self, x: torch.Tensor) -> None:
        if self._like is None:
            self._like = x[:, :0, :0]

    def empty(self) -> torch.Tensor:
        like = self._like
        return like.new_zeros((like.shape[0], self.out_channels, 0))

    def state_bytes(self) -> int:
        return 0


class PointwiseCell(Cell):
    def __init__(self, module: nn.Module, channels: int):
        self.module, self.out_channels = module, channels

    def push(self, x: torch.Tensor) -> torch.Tensor:
        self.remember(x)
        return self.module(x) if x.shape[-1] else x


class IdentityCell(PointwiseCell):
    def __init__(self, channels: int):
        super().__init__(nn.Identity(), channels)


class NearestUpsampleCell(Cell):
    def __init__(self, scale: int, channels: int):
        self.scale, self.out_channels = scale, channels

    def push(self, x: torch.Tensor) -> torch.Tensor:
        self.remember(x)
        return x.repeat_interleave(self.scale, dim=-1)


class LinearUpsampleCell(Cell):
    """torch's linear upsample (align_corners=False), integer scale s: output j blends input
    left = floor(src) and left + 1 (clamped to the last sample), src = max(0, (j + 1/2)/s - 1/2),
    weights computed in the signal's dtype as torch does. Output j waits for left + 1 to arrive
    (even where its weight is 0: one input sample later than the receptive field says)."""

    def __init__(self, scale: int, channels: int):
        self.scale, self.out_channels = scale, channels
        self.tail, self.next = _Tail(), 0

    def _source(self, j: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        source = ((j.to(dtype) + 0.5) * (1.0 / self.scale) - 0.5).clamp(min=0)
        left = source.long()
        return left, (source - left.to(dtype)).clamp(0, 1)

    def _emit(self, final: bool) -> torch.Tensor:
        end = self.tail.end  # outputs j < end * s exist once `end` samples have arrived
        j = torch.arange(self.next, end * self.scale)
        dtype = self._like.dtype
        left, weight = self._source(j, dtype)
        count = len(j) if final else int((left + 1 < end).sum())  # left is monotone in j
        if not count:
            return self.empty()
        j, left, weight = j[:count], left[:count], weight[:count]
        right = (left + 1).clamp(max=end - 1)
        x = self.tail.window(self.tail.start, end)
        weight = weight.to(x.device)
        y = (x.index_select(-1, (left - self.tail.start).to(x.device)) * (1 - weight)
             + x.index_select(-1, (right - self.tail.start).to(x.device)) * weight)
        self.next = int(j[-1]) + 1
        self.tail.drop(int(self._source(torch.tensor([self.next]), dtype)[0][0]))
        return y

    def push(self, x: torch.Tensor) -> torch.Tensor:
        self.remember(x)
        self.tail.append(x)
        return self._emit(final=False) if self.tail.end else self.empty()

    def flush(self) -> torch.Tensor:
        return self._emit(final=True) if self.tail.end else self.empty()

    def state_bytes(self) -> int:
        return self.tail.nbytes()


def _one(value) -> int:
    return value[0] if isinstance(value, (tuple, list)) else value


class _ConvCell(Cell):
    def __init__(self, module: nn.Module):
        with torch.no_grad():  # weight_norm recomputes g * v / |v| on each access: once here
            self.weight = module.weight.detach()
        self.bias = None if module.bias is None else module.bias.detach()
        self.kernel, self.stride = _one(module.kernel_size), _one(module.stride)
        self.dilation, self.groups = _one(module.dilation), module.groups
        self.span = self.dilation * (self.kernel - 1) + 1  # input samples one output reads
        self.out_channels = module.out_channels


class Conv1dCell(_ConvCell):
    """Output j reads padded input j*s + d*t, t < k; padded index = input index + left."""

    def __init__(self, module: nn.Module, left: int, right: int):
        super().__init__(module)
        self.left, self.right = left, right
        self.tail, self.next = _Tail(), 0

    def push(self, x: torch.Tensor) -> torch.Tensor:
        if self._like is None and self.left:
            self.tail.append(x.new_zeros((*x.shape[:-1], self.left)))
        self.remember(x)
        self.tail.append(x)
        return self._emit()

    def flush(self) -> torch.Tensor:
        like = self._like
        self.tail.append(like.new_zeros((like.shape[0], self.weight.shape[1] * self.groups,
                                         self.right)))
        return self._emit()

    def _emit(self) -> torch.Tensor:
        ready = (self.tail.end - self.span) // self.stride + 1  # outputs whose taps have arrived
        if ready <= self.next:
            return self.empty()
        lo, hi = self.next * self.stride, (ready - 1) * self.stride + self.span
        y = F.conv1d(self.tail.window(lo, hi), self.weight, self.bias, self.stride, 0,
                     self.dilation, self.groups)
        self.next = ready
        self.tail.drop(ready * self.stride)
        return y

    def state_bytes(self) -> int:
        return self.tail.nbytes()


class ConvTranspose1dCell(_ConvCell):
    """Input i adds tap t into full output m = i*s + d*t; the layer's output j is m - trim. With
    L inputs the full signal ends at (L-1)*s + span + end_adjust (output_padding's bias-only
    samples past the taps, less the trimmed right padding)."""

    def __init__(self, module: nn.Module, trim: int, end_adjust: int):
        super().__init__(module)
        self.trim, self.end_adjust = trim, end_adjust
        self.acc: Optional[torch.Tensor] = None  # full samples [acc_start, ...) still summing
        self.acc_start = 0
        self.inputs = 0
        self.next = trim  # next full index to emit; those before `trim` are cut

    def push(self, x: torch.Tensor) -> torch.Tensor:
        self.remember(x)
        if x.shape[-1]:
            contributions = F.conv_transpose1d(x, self.weight, None, self.stride, 0, 0,
                                               self.groups, self.dilation)
            self._add(contributions, self.inputs * self.stride)
            self.inputs += x.shape[-1]
        if not self.inputs:
            return self.empty()
        # final: no later input reaches below inputs*s; existing: the signal may end here
        return self._emit(min(self.inputs * self.stride, self._end()))

    def flush(self) -> torch.Tensor:
        return self._emit(self._end()) if self.inputs else self.empty()

    def _end(self) -> int:
        return (self.inputs - 1) * self.stride + self.span + self.end_adjust

    def _add(self, contributions: torch.Tensor, first: int) -> None:
        end = first + contributions.shape[-1]
        if self.acc is None:
            self.acc = contributions.new_zeros((*contributions.shape[:-1], end - self.acc_start))
        elif end > self.acc_start + self.acc.shape[-1]:
            grow = end - self.acc_start - self.acc.shape[-1]
            self.acc = torch.cat([self.acc, self.acc.new_zeros((*self.acc.shape[:-1], grow))], -1)
        self.acc[..., first - self.acc_start: end - self.acc_start] += contributions

    def _emit(self, bound: int) -> torch.Tensor:
        if bound <= self.next:
            y = self.empty()
        else:
            acc_end = self.acc_start + self.acc.shape[-1]
            y = self.acc[..., self.next - self.acc_start: min(bound, acc_end) - self.acc_start]
            if bound > max(acc_end, self.next):  # output_padding past the taps: zeros
                zeros = self.acc.new_zeros((*self.acc.shape[:-1], bound - max(acc_end, self.next)))
                y = torch.cat([y, zeros], dim=-1)
            if self.bias is not None:
                y = y + self.bias.view(1, -1, 1)
            self.next = bound
        keep = min(self.next, self.inputs * self.stride)
        if self.acc is not None and keep > self.acc_start:
            self.acc = self.acc[..., keep - self.acc_start:]
            self.acc_start = keep
        return y

    def state_bytes(self) -> int:
        return 0 if self.acc is None else self.acc.numel() * self.acc.element_size()


class ChainCell(Cell):
    def __init__(self, cells: list[Cell], channels: int):
        self.cells, self.out_channels = cells, channels

    def push(self, x: torch.Tensor) -> torch.Tensor:
        self.remember(x)
        for cell in self.cells:
            x = cell.push(x)
        return x

    def flush(self) -> torch.Tensor:
        y = None
        for cell in self.cells:
            y = cell.flush() if y is None else torch.cat([cell.push(y), cell.flush()], dim=-1)
        return y

    def state_bytes(self) -> int:
        return sum(cell.state_bytes() for cell in self.cells)


class ParallelCell(Cell):
    """Branches on one input, summed (or averaged) over the same output times: each branch's
    samples wait in its delay line until every branch has reached that time."""

    def __init__(self, branches: list[Cell], channels: int, mean: bool):
        self.branches, self.out_channels, self.mean = branches, channels, mean
        self.pending: list[Optional[torch.Tensor]] = [None] * len(branches)

    def push(self, x: torch.Tensor) -> torch.Tensor:
        self.remember(x)
        return self._combine([branch.push(x) for branch in self.branches])

    def flush(self) -> torch.Tensor:
        return self._combine([branch.flush() for branch in self.branches])

    def _combine(self, outputs: list[torch.Tensor]) -> torch.Tensor:
        self.pending = [y if p is None else torch.cat([p, y], dim=-1)
                        for p, y in zip(self.pending, outputs)]
        n = min(p.shape[-1] for p in self.pending)
        total = sum(p[..., :n] for p in self.pending)
        self.pending = [p[..., n:] for p in self.pending]
        return total / len(self.branches) if self.mean else total

    def state_bytes(self) -> int:
        held = sum(p.numel() * p.element_size() for p in self.pending if p is not None)
        return held + sum(branch.state_bytes() for branch in self.branches)


def _unsupported(plan: LayerPlan, why: str) -> ConvscopeError:
    return ConvscopeError(f"{plan.key}: {why}; stream.mode=stateful has no cell for it "
                          "(stream.mode=overlap streams it)")


def _conv1d_padding(plan: LayerPlan, module: nn.Module) -> tuple[int, int]:
    mode = getattr(module, "padding_mode", "zeros")
    if mode != "zeros":
        raise _unsupported(plan, f"Conv1d padding_mode={mode!r} copies signal samples into "
                                 "the padding")
    if isinstance(module, CausalConv1d):
        return module.causal_padding, 0
    k, d = _one(module.kernel_size), _one(module.dilation)
    if module.padding == "same":
        left = d * (k - 1) // 2
        return left, d * (k - 1) - left
    if module.padding == "valid":
        return 0, 0
    p = _one(module.padding)
    return p, p


def make_cell(plan: LayerPlan, module: nn.Module) -> Cell:
    """The cell of one planned layer (a block's cells nested as the plan nests them)."""
    channels = plan.output_shape[1]
    if plan.children:
        cells = [make_cell(child, sub) for child, (_, sub) in
                 zip(plan.children, child_modules(plan, module))]
        if plan.type == "Residual":
            inner = ChainCell(cells, channels)
            return ParallelCell([IdentityCell(channels), inner], channels, mean=False)
        if plan.type == "Parallel":
            return ParallelCell(cells, channels, mean=plan.kwargs["reduce"] == "mean")
        if plan.type == "Sequential":
            return ChainCell(cells, channels)
        raise _unsupported(plan, f"{plan.type}'s Kaiser filters replicate the edge samples")
    if plan.type in POINTWISE_TYPES:
        return PointwiseCell(module, channels)
    if plan.type == "Conv1d":
        return Conv1dCell(module, *_conv1d_padding(plan, module))
    if plan.type == "ConvTranspose1d":
        if isinstance(module, CausalConvTranspose1d):  # the full output's first L_in*s samples
            return ConvTranspose1dCell(module, 0, -module.right_trim)
        p, op = _one(module.padding), _one(module.output_padding)
        return ConvTranspose1dCell(module, p, op - p)
    if plan.type == "Upsample":
        scale = int(plan.kwargs["scale_factor"])
        if plan.kwargs["mode"] == "linear":
            return LinearUpsampleCell(scale, channels)
        return NearestUpsampleCell(scale, channels)
    raise _unsupported(plan, f"{plan.type} has no streaming cell")


# on_output(layer index, first sample index, samples (N, C, n)): every top-level layer's samples
# exactly once and in order, as stack.streaming's OutputSink
OutputSink = Callable[[int, int, torch.Tensor], None]


@dataclass
class ChunkStats:
    """What streaming cost per chunk: wall time, the state the cells held, and how far the
    output lagged the input (output samples not yet emitted for the input consumed)."""

    chunks: int = 0
    input_samples: int = 0
    times_ms: list[float] = field(default_factory=list)
    max_state_bytes: int = 0
    max_lag_samples: int = 0  # output samples, measured at chunk ends

    @property
    def mean_ms(self) -> float:
        return sum(self.times_ms) / len(self.times_ms) if self.times_ms else 0.0

    @property
    def max_ms(self) -> float:
        return max(self.times_ms, default=0.0)


class StatefulStack:
    """A planned stack's cells, one per top-level layer; push chunks, then flush once."""

    def __init__(self, plans: list[LayerPlan], stack: nn.Sequential):
        self.cells = [make_cell(plan, module) for plan, module in zip(plans, stack)]
        self.emitted = [0] * len(self.cells)
        self.rate = Fraction(1)  # output samples per input sample
        for plan in plans:
            self.rate *= Fraction(*plan.stride_ratio)

    def push(self, x: torch.Tensor, on_output: OutputSink) -> None:
        for i, cell in enumerate(self.cells):
            x = cell.push(x)
            self._hand(i, x, on_output)

    def flush(self, on_output: OutputSink) -> None:
        y = None
        for i, cell in enumerate(self.cells):
            y = cell.flush() if y is None else torch.cat([cell.push(y), cell.flush()], dim=-1)
            self._hand(i, y, on_output)

    def _hand(self, layer: int, samples: torch.Tensor, on_output: OutputSink) -> None:
        if samples.shape[-1]:
            on_output(layer, self.emitted[layer], samples)
            self.emitted[layer] += samples.shape[-1]

    def state_bytes(self) -> int:
        return sum(cell.state_bytes() for cell in self.cells)


def stream_stateful(engine: StatefulStack, chunks: Iterable[torch.Tensor],
                    on_output: OutputSink) -> ChunkStats:
    """Push every chunk (N, C, n) through `engine`, then flush; returns the per-chunk costs."""
    stats = ChunkStats()
    with torch.no_grad():
        for chunk in chunks:
            began = time.perf_counter()
            engine.push(chunk, on_output)
            stats.times_ms.append((time.perf_counter() - began) * 1000)
            stats.chunks += 1
            stats.input_samples += chunk.shape[-1]
            expected = int(stats.input_samples * engine.rate)
            stats.max_lag_samples = max(stats.max_lag_samples, expected - engine.emitted[-1])
            stats.max_state_bytes = max(stats.max_state_bytes, engine.state_bytes())
        began = time.perf_counter()
        engine.flush(on_output)
        stats.times_ms.append((time.perf_counter() - began) * 1000)
    return stats
