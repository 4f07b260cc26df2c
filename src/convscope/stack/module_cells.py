"""Stateful streaming of any nn.Module whose forward is a chain of leaf layers with cells.

stack.stateful's cells (Conv1d, ConvTranspose1d, anything pointwise in time) stream a config
stack layer by layer; a user's module gets the same when its traced forward (stack.analysis) is a
chain: every leaf call takes the previous call's output (the first takes the model input) and
the model returns the last call's output. Whether a leaf is pointwise in time is read from the
analysis (its output reaches exactly what its input does), so a TorchScript Snake or any
elementwise module qualifies. The chain is checked once more by value: the cells fed the traced
example in one chunk must give the model's own output, which catches an op outside the leaves
(a torch.tanh after the last conv) that no hook sees.

Anything else is one ConvscopeError naming the first op without a cell: a residual add, F.pad
between two convs, a reflect-padded conv, an LSTM.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from convscope.errors import ConvscopeError
from convscope.stack.analysis import EXAMPLE_SOURCE, Trace, TracedCall, trace_forward
from convscope.stack.layers.flow import Flow
from convscope.stack.layers.relation import STACK_INPUT
from convscope.stack.layers.cell import Cell, PointwiseCell
from convscope.stack.layers.convolution_cells import Conv1dCell, zeros_padding
from convscope.stack.layers.transposed_cells import transposed_cell
from convscope.stack.stateful import ChainCell

OVERLAP_INSTEAD = "stream.mode=overlap streams it"


def _refused(what: str) -> ConvscopeError:
    return ConvscopeError(f"stream.mode=stateful: {what}; {OVERLAP_INSTEAD}")


def _conv_padding(call: TracedCall) -> tuple[int, int]:
    padding = zeros_padding(call.module)
    if padding is None:
        raise _refused(f"{call.name} ({type(call.module).__name__}) has padding_mode="
                       f"{call.module.padding_mode!r}, which copies signal samples into the "
                       "padding: no stateful cell")
    return padding


def _cell(call: TracedCall, given: Flow) -> Cell:
    module = call.module
    channels = call.output_shape[1] if call.output_shape and len(call.output_shape) > 1 else 1
    if isinstance(module, nn.Conv1d):
        return Conv1dCell(module, *_conv_padding(call))
    if isinstance(module, nn.ConvTranspose1d):
        return transposed_cell(module)
    if call.flow.finite and given.finite and call.flow.reach == given.reach \
            and call.input_shape == call.output_shape:
        return PointwiseCell(module, channels)  # each output sample reads its own input sample
    why = call.flow.reason if not call.flow.finite else "it is not pointwise in time"
    raise _refused(f"{call.name} ({type(module).__name__}) has no stateful cell ({why})")


def chain_cells(trace: Trace) -> ChainCell:
    """The cells of a traced forward that is a chain of leaf calls (else one error naming the
    first op that breaks it)."""
    if not trace.calls:
        raise _refused("the model runs no leaf module, so there is nothing to make cells of")
    cells, given = [], Flow(STACK_INPUT, len(trace.calls[0].input_shape or [0, 0]) - 1)
    for index, call in enumerate(trace.calls):
        expected = EXAMPLE_SOURCE if index == 0 else index - 1
        if call.source != expected:
            before = "the model input" if index == 0 else trace.calls[index - 1].name
            raise _refused(f"{call.name} ({type(call.module).__name__}) takes its input from an "
                           f"op outside the leaf layers, not from {before} (an add, a pad, a "
                           "cat or a functional activation), which has no stateful cell")
        cells.append(_cell(call, given))
        given = call.flow
    return ChainCell(cells, cells[-1].out_channels)


def module_cells(model: nn.Module, example: torch.Tensor) -> ChainCell:
    """Cells streaming `model` statefully, checked against its forward of `example`."""
    with parametrize.cached():
        trace = trace_forward(model, example)
        engine = chain_cells(trace)
        with torch.no_grad():
            got = torch.cat([engine.push(example), engine.flush()], dim=-1)
    expected = trace.output
    if not isinstance(expected, torch.Tensor) or got.shape != expected.shape \
            or not torch.allclose(got, expected, rtol=1e-4, atol=1e-5 * float(
                expected.abs().max().clamp(min=1e-12))):
        raise _refused(f"{type(model).__name__}'s forward does more than its leaf layers after "
                       f"{trace.calls[-1].name} (an op no hook sees, like torch.tanh), which "
                       "has no stateful cell")
    return chain_cells(trace)  # fresh cells: the check above used the first ones up


def stream_module_stateful(model: nn.Module, chunks: Iterable[torch.Tensor],
                           example: torch.Tensor) -> Iterator[torch.Tensor]:
    """model's output for the concatenation of `chunks`, as the cells emit it (then flushed)."""
    engine = module_cells(model, example)
    with torch.no_grad(), parametrize.cached():
        for chunk in chunks:
            y = engine.push(chunk)
            if y.shape[-1]:
                yield y
        y = engine.flush()
        if y.shape[-1]:
            yield y
