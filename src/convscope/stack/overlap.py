"""Overlap streaming for any nn.Module with a finite receptive field: blocks with exactly the
context the analysis gives, cropped and concatenated, equal to one forward of the whole signal.

The traced forward (stack.analysis) gives the output's Reach: output n*p + j reads input samples
[lo_j + n*s, hi_j + n*s] (p output phases per s input samples, rate p/s). A block of input
samples [S, S + B) with S and B multiples of the alignment A (the lcm of every traced tensor's
shift, so the block's every intermediate tensor starts on a whole sample of the signal's) makes
outputs [S*p/s, (S+B)*p/s), which read input [S + min lo, S + B - s + max hi]:

    left  = max(0, -min_j lo_j)          right = max(0, max_j hi_j - s + 1)

The block runs on input [S - left', S + B + right) with left' = left rounded up to a multiple of
A (so the chunk starts aligned and its output k is the signal's output rate*(S - left') + k),
clipped to the signal (where the signal ends, the chunk ends with it: the model pads there as it
does in one shot). What comes out is cropped to the block's own outputs; the last block keeps
everything to the end. Memory: one chunk's forward, B + left' + right input samples.

A model whose output has no finite reach (an LSTM, a norm over the whole signal) cannot run so;
`context_of` raises Unbounded with the reason and the first row that has none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Iterator, Optional

import torch
from torch import nn
from torch.nn.utils import parametrize

from convscope.errors import ConvscopeError
from convscope.stack.analysis import ForwardFailed, Trace, trace_forward
from convscope.stack.backends import safe_kernels
from convscope.stack.layers.flow import tensors_in

# input samples of the traced example, the first length the model accepts: the reach is
# periodic, so a short forward gives it (a full-width HiFi-GAN V1 takes ~1 s per 32 frames)
EXAMPLE_LENGTHS = (32, 256, 2048)


class Unbounded(ConvscopeError):
    """The model's output depends on input samples without bound: `row` names the first leaf
    call that does (or the model itself), `reason` says why."""

    def __init__(self, row: str, reason: str):
        self.row, self.reason = row, reason
        super().__init__(f"{row}: {reason}")


@dataclass(frozen=True)
class OverlapContext:
    """What a block needs: `left` and `right` input samples of context, blocks starting at
    multiples of `alignment` input samples; `rate` output samples per input sample; the output's
    time axis (an index into its dims)."""

    left: int
    right: int
    alignment: int
    rate: Fraction
    time_axis: int
    example_samples: int = 0  # the traced example's length (describe it at the same length)

    def input_block(self, output_samples: int) -> int:
        """Input samples per block for about `output_samples` output samples: a multiple of the
        alignment, at least one."""
        wanted = max(1, math.ceil(output_samples / self.rate))
        return max(1, math.ceil(wanted / self.alignment)) * self.alignment

    def chunk_samples(self, block: int) -> int:
        """Input samples one chunk holds at most: the block and its context."""
        return self.aligned_left + block + self.right

    @property
    def aligned_left(self) -> int:
        return math.ceil(self.left / self.alignment) * self.alignment

    def as_json(self) -> dict:
        return {"left_context": self.left, "right_context": self.right,
                "alignment": self.alignment, "rate": float(self.rate),
                "rate_fraction": str(self.rate)}


def context_from_trace(trace: Trace) -> OverlapContext:
    flow = trace.output_flow
    if flow is None and not tensors_in(trace.output):
        raise ConvscopeError("overlap streaming: the model returned no tensor, "
                             f"but {type(trace.output).__name__}")
    if flow is None:
        raise Unbounded("the model's output", "does not depend on the model's input")
    if not flow.finite:
        first = next((c for c in trace.calls if not c.flow.finite), None)
        raise Unbounded(first.name if first is not None else "the model's output", flow.reason)
    reach = flow.reach
    spans = [span for span in reach.spans if span is not None]
    if not spans:
        raise Unbounded("the model's output", "does not depend on the model's input")
    left = max(0, -min(lo for lo, _ in spans))
    right = max(0, max(hi for _, hi in spans) - reach.shift + 1)
    return OverlapContext(left, right, math.lcm(trace.alignment, reach.shift), reach.rate,
                          flow.time_axis)


def context_of(model: nn.Module, example: torch.Tensor) -> OverlapContext:
    """The overlap context of `model`, from one traced forward of the start of `example`: the
    first of EXAMPLE_LENGTHS samples the model accepts (or all of `example`, if shorter)."""
    lengths = [n for n in EXAMPLE_LENGTHS if n < example.shape[-1]] + [example.shape[-1]]
    for n in lengths:
        try:
            with parametrize.cached():
                trace = trace_forward(model, example[..., :n])
        except ForwardFailed:
            if n == lengths[-1]:
                raise
            continue  # too short for the model (a reflect pad, a pooling): the next length
        return replace(context_from_trace(trace), example_samples=n)
    raise AssertionError("unreachable: the last length raises or returns")


def overlap_blocks(model: nn.Module, x: torch.Tensor, context: OverlapContext,
                   block: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(first output index, output samples) of each block of `block` input samples (a multiple
    of context.alignment), in order; their concatenation along context.time_axis is model(x)."""
    if block % context.alignment:
        raise ValueError(f"block {block} is not a multiple of the alignment {context.alignment}")
    total = x.shape[-1]
    emitted = 0
    with torch.no_grad(), safe_kernels(model), parametrize.cached():
        for start in range(0, max(total, 1), block):
            stop = min(total, start + block)
            first = max(0, start - context.aligned_left)
            last = min(total, stop + context.right)
            y = tensors_in(model(x[..., first:last]))[0]  # a tuple's first, as the analysis
            offset = int(context.rate * first)  # the chunk's output 0 is this signal output
            begin = emitted - offset
            end = y.shape[context.time_axis] if last == total else int(context.rate * stop) - offset
            if begin < 0 or end > y.shape[context.time_axis]:
                raise ConvscopeError(
                    f"overlap streaming: the block at input sample {start} made outputs "
                    f"{offset}-{offset + y.shape[context.time_axis]}, not the {offset + begin}-"
                    f"{offset + end} it must cover; the model's output does not follow its "
                    "input sample for sample (stream.enabled=false runs it in one shot)")
            kept = y.narrow(context.time_axis, begin, max(0, end - begin))
            yield emitted, kept
            emitted += kept.shape[context.time_axis]
            if last == total:
                return


def stream_overlap(model: nn.Module, x: torch.Tensor, *, block_output_samples: int = 65536,
                   context: Optional[OverlapContext] = None) -> torch.Tensor:
    """model(x), computed block by block with exact context (on the CPU, concatenated)."""
    context = context or context_of(model, x)
    block = context.input_block(block_output_samples)
    pieces = [y.cpu() for _, y in overlap_blocks(model, x, context, block)]
    return torch.cat(pieces, dim=context.time_axis)
