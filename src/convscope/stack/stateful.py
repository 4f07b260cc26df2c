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

The layer families' cells live in the catalogue beside their families (stack.layers: *_cells);
this module chooses a layer's cell, composes the blocks' cells and runs the chunks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterable, Optional

import torch
from torch import nn

from convscope.stack.build import child_modules
from convscope.stack.layers import convolution_cells, resampling_cells, transposed_cells
from convscope.stack.layers.cell import (
    Cell,
    CellFactory,
    IdentityCell,
    pointwise_cell,
    unsupported,
)
from convscope.stack.plan import ACTIVATIONS, SNAKES, LayerPlan

POINTWISE_TYPES = tuple(ACTIVATIONS) + SNAKES


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


# the catalogue families' cells, by planned layer type
CELLS: dict[str, CellFactory] = {
    **convolution_cells.CELLS, **transposed_cells.CELLS, **resampling_cells.CELLS,
    **{name: pointwise_cell for name in POINTWISE_TYPES}}


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
        raise unsupported(plan, f"{plan.type}'s Kaiser filters replicate the edge samples")
    factory = CELLS.get(plan.type)
    if factory is None:
        raise unsupported(plan, f"{plan.type} has no streaming cell")
    return factory(plan, module)


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
