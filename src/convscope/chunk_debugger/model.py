"""The chunk debugger for any nn.Module (model=module, convscope.chunks): where a model run chunk
by chunk clicks, which leaf's missing context causes it, and the overlap that makes it exact.

- One traced forward (stack.analysis) gives the one-shot output and, through a pass-through leaf
  on the output, the output's exact Reach: the overlap every boundary needs, in input samples.
- The naive run: each chunk through the whole model on its own, outputs concatenated.
- Each leaf's own share, by a forward hook: the one-shot forward with only that leaf call's
  output replaced by its input cut where the chunks meet in it, each piece run on its own (every
  other op exact), over the first ABLATION_CHUNKS chunks. The leaf's own context (its Relation)
  says how much it lacked.
- The stated overlap is checked: each chunk run with that context around it, cropped, against
  the one-shot output.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from convscope.chunk_debugger.contexts import (
    Context,
    affected_outputs,
    in_input_samples,
    leaf_label,
    own_relation,
    reach_context,
    relation_context,
)
from convscope.chunk_debugger.findings import (
    ChunkReport,
    ErrorSize,
    LayerContext,
    LayerFinding,
    boundary_findings,
    error_size,
)
from convscope.errors import ConvscopeError
from convscope.stack.analysis import TracedCall, trace_forward
from convscope.stack.backends import safe_kernels

ABLATION_CHUNKS = 3  # each leaf's own error is measured over this many chunks (2 boundaries)


class _Tapped(nn.Module):
    """The model with an nn.Identity on its output: the tracer gives every leaf call the flow of
    its output, so this call's flow is the model output's (whatever follows the last layer)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.output = nn.Identity()

    def forward(self, x):
        return self.output(self.model(x))


@dataclass(frozen=True)
class LeafCall:
    """One leaf call with context of its own: which call of which module, and its arithmetic."""

    index: int  # in call order, as describe's rows
    name: str
    module: nn.Module
    call: int  # this module's call number (a module called twice is two rows)
    context: Optional[Context]  # its own, in its input samples; None: unknown
    ratio: Fraction  # its input's rate over the model input's
    axis: int = -1  # its time axis (an LSTM's batch_first input has it in the middle)


def debug_model(model: nn.Module, x: torch.Tensor, chunk: int, input_rate: Fraction,
                tolerance: float = 1e-5) -> ChunkReport:
    """x (1, C, T) on the model's device and dtype; `chunk` input samples per chunk."""
    # weight_norm's weights computed once for the dozens of forwards, not once per forward
    with parametrize.cached():
        return _debug_model(model, x, chunk, input_rate, tolerance)


def _debug_model(model: nn.Module, x: torch.Tensor, chunk: int, input_rate: Fraction,
                 tolerance: float) -> ChunkReport:
    total = x.shape[-1]
    if chunk >= total:
        raise ConvscopeError(f"chunks.seconds: a chunk of {chunk} input samples is not shorter "
                             f"than the whole input ({total}): there is no boundary to debug")
    with torch.no_grad(), safe_kernels(model):
        trace = trace_forward(_Tapped(model), x)
        exact = _waveform(trace.output)
        pieces, tail = _naive(model, x, chunk)
    naive = torch.cat(pieces, dim=-1)
    outputs = [piece.shape[-1] for piece in pieces]
    output_flow = trace.calls[-1].flow
    reach = output_flow.reach
    output_rate = input_rate * (reach.rate if reach is not None else Fraction(exact.shape[-1],
                                                                             total))
    compared = min(exact.shape[-1], naive.shape[-1])
    atol = tolerance * (float(exact.abs().max()) or 1.0)
    exact_np, naive_np = exact.cpu().double().numpy(), naive.cpu().double().numpy()
    signal_rms = float(np.sqrt(np.mean(exact_np[..., :compared] ** 2)))
    diff = naive_np[..., :compared] - exact_np[..., :compared]
    cuts = [chunk * k for k in range(1, len(pieces))]

    overlap = None if reach is None else reach_context(reach, cuts)
    affected = None if reach is None or not cuts else affected_outputs(reach, cuts[0])
    leaves = _leaf_calls(trace.calls[:-1], total)
    # each leaf's share on the first chunks only: every boundary of a time-invariant model cuts
    # the same context, and a deep model needs one forward per leaf
    excerpt = x[..., :min(total, ABLATION_CHUNKS * chunk)]
    with torch.no_grad(), safe_kernels(model):
        exact_excerpt = _waveform(model(excerpt)).cpu().double().numpy()
    excerpt_cuts = [c for c in cuts if c < excerpt.shape[-1]]
    findings = [LayerFinding(leaf.index, leaf.name, leaf_label(leaf.module), _context(leaf),
                             _leaf_error(model, excerpt, leaf, excerpt_cuts, exact_excerpt,
                                         signal_rms, atol))
                for leaf in leaves]
    check = None if overlap is None else _overlap_check(model, x, chunk, overlap, output_rate
                                                        / input_rate, exact_np, signal_rms, atol)
    return ChunkReport(chunk, input_rate, output_rate, outputs, exact.shape[-1], tail, atol,
                       error_size(diff, signal_rms, atol), boundary_findings(
                           diff, outputs, signal_rms, atol, output_rate),
                       findings, overlap, affected, _no_overlap(output_flow, overlap, chunk),
                       exact_np, naive_np, overlap_check=check, input_unit="input samples")


def _no_overlap(output_flow, overlap: Optional[Context], chunk: int) -> Optional[str]:
    """Why the report states no overlap, if it states none."""
    if output_flow.reach is None:
        return f"the output's context is not finite: {output_flow.reason or 'unknown'}"
    if overlap is None:
        return (f"the output runs at {output_flow.reach.rate} x the input: no boundary at a "
                f"multiple of {chunk} input samples splits it at a whole output sample")
    return None


def _waveform(output) -> torch.Tensor:
    """The model's output as (C, L): (1, C, L) or (1, L) returned."""
    if not isinstance(output, torch.Tensor) or output.dim() not in (2, 3) or output.shape[0] != 1:
        shape = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ConvscopeError(f"chunks: the model returned {shape}; the chunk debugger needs a "
                             "waveform tensor (1, channels, samples) or (1, samples)")
    return output[0] if output.dim() == 3 else output


def _naive(model: nn.Module, x: torch.Tensor, chunk: int) -> tuple[list[torch.Tensor], int]:
    """Each chunk through the model on its own; a last piece the model cannot take (shorter
    than its kernels reach) is left out, as a real-time loop would wait for more input."""
    total = x.shape[-1]
    pieces = [_waveform(model(x[..., a:a + chunk])) for a in range(0, total - chunk + 1, chunk)]
    tail = total % chunk
    if tail:
        try:
            pieces.append(_waveform(model(x[..., total - tail:])))
            tail = 0
        except Exception:  # noqa: BLE001 -- too short for the model: left out and reported
            pass
    return pieces, tail


def leaf_calls(model: nn.Module, x: torch.Tensor) -> list[LeafCall]:
    """The leaf calls of `model` on `x` that read beyond their own chunk, with their contexts."""
    with parametrize.cached():
        return _leaf_calls(trace_forward(_Tapped(model), x).calls[:-1], x.shape[-1])


def _leaf_calls(calls: list[TracedCall], total: int) -> list[LeafCall]:
    """The leaf calls that read beyond their own chunk (or whose context is not known); pointwise
    leaves (activations, 1x1 convs) cannot make a boundary error on their own."""
    seen: dict[int, int] = {}
    found = []
    for index, call in enumerate(calls):
        number = seen.get(id(call.module), 0)
        seen[id(call.module)] = number + 1
        if not call.input_shape or not call.output_shape:
            continue
        relation = own_relation(call.module, call.input_shape)
        context = None if relation is None else relation_context(relation)
        if context == (0, 0):
            continue
        if call.flow.reach is not None and relation is not None:  # exact: the rate it runs at
            ratio = call.flow.reach.rate * relation.in_period / relation.out_period
        else:  # the length it got, as a fraction of the input's
            ratio = Fraction(call.input_shape[-1], total)
        name = call.name.removeprefix("model.")
        found.append(LeafCall(index, name, call.module, number, context, ratio,
                              call.flow.time_axis))
    return found


def _context(leaf: LeafCall) -> Optional[LayerContext]:
    if leaf.context is None:
        return None
    left, right = leaf.context
    return LayerContext(left, right, in_input_samples(left, leaf.ratio),
                        in_input_samples(right, leaf.ratio))


def leaf_chunked(model: nn.Module, x: torch.Tensor, leaf: LeafCall, cuts: list[int],
                 context: Context = (0, 0)) -> Optional[torch.Tensor]:
    """The model's output with only `leaf`'s call run piece by piece: its input cut where the
    model input's `cuts` fall in it, each piece given `context` samples of its neighbours (0: the
    naive run's pieces), the pieces' outputs cropped and concatenated. None when the pieces'
    outputs do not add up to the call's own length (nothing to put in its place)."""
    state = {"calls": 0, "inside": False, "failed": False}

    def hook(module, args, output):
        if state["inside"]:
            return None
        number, state["calls"] = state["calls"], state["calls"] + 1
        if number != leaf.call or not args or not isinstance(args[0], torch.Tensor):
            return None
        state["inside"] = True
        try:
            replaced = _pieces(module, args[0], [_scaled(c, leaf.ratio) for c in cuts], context,
                               leaf.axis)
        finally:
            state["inside"] = False
        if replaced is None or replaced.shape != output.shape:
            state["failed"] = True
            return None
        return replaced

    handle = leaf.module.register_forward_hook(hook)
    try:
        with torch.no_grad(), safe_kernels(model):
            out = _waveform(model(x))
    finally:
        handle.remove()
    return None if state["failed"] else out


def _scaled(cut: int, ratio: Fraction) -> int:
    return round(cut * ratio)


def _pieces(module: nn.Module, inp: torch.Tensor, cuts: list[int], context: Context,
            axis: int) -> Optional[torch.Tensor]:
    length = inp.shape[axis]
    edges = [0] + [c for c in cuts if 0 < c < length] + [length]
    left, right = context
    outputs = []
    for a, b in zip(edges, edges[1:]):
        start, stop = max(0, a - left), min(length, b + right)
        try:
            y = module(inp.narrow(axis, start, stop - start))
        except Exception:  # noqa: BLE001 -- a piece the leaf cannot take: its share unmeasured
            return None
        if not isinstance(y, torch.Tensor):  # an LSTM's (output, state): not a waveform call
            return None
        scale = Fraction(y.shape[axis], stop - start)  # the leaf's own rate, out over in
        first, last = (a - start) * scale, (b - start) * scale
        if first.denominator != 1 or last.denominator != 1:
            return None
        outputs.append(y.narrow(axis, int(first), int(last - first)))
    return torch.cat(outputs, dim=axis)


def _leaf_error(model: nn.Module, x: torch.Tensor, leaf: LeafCall, cuts: list[int],
                exact: np.ndarray, signal_rms: float, atol: float) -> Optional[ErrorSize]:
    out = leaf_chunked(model, x, leaf, cuts)
    if out is None:  # the pieces change its length: its share cannot be put in alone
        return None
    y = out.cpu().double().numpy()
    compared = min(y.shape[-1], exact.shape[-1])
    return error_size(y[..., :compared] - exact[..., :compared], signal_rms, atol)


def overlapped(model: nn.Module, x: torch.Tensor, chunk: int, overlap: Context,
               ratio: Fraction) -> Optional[torch.Tensor]:
    """Each chunk run with `overlap` input samples of its neighbours around it, its outputs
    cropped to the chunk's own (`ratio` output samples per input sample): exact streaming by
    overlap. None when a chunk's outputs do not start at a whole output sample."""
    total = x.shape[-1]
    left, right = overlap
    pieces = []
    with torch.no_grad(), safe_kernels(model):
        for a in range(0, total, chunk):
            b = min(total, a + chunk)
            start, stop = max(0, a - left), min(total, b + right)
            y = _waveform(model(x[..., start:stop]))
            first, last = (a - start) * ratio, (b - start) * ratio
            if first.denominator != 1 or last.denominator != 1:
                return None
            pieces.append(y[..., int(first):int(last)])
    return torch.cat(pieces, dim=-1)


def _overlap_check(model: nn.Module, x: torch.Tensor, chunk: int, overlap: Context,
                   ratio: Fraction, exact: np.ndarray, signal_rms: float,
                   atol: float) -> Optional[ErrorSize]:
    out = overlapped(model, x, chunk, overlap, ratio)
    if out is None or out.shape[-1] != exact.shape[-1]:
        return None
    return error_size(out.cpu().double().numpy() - exact, signal_rms, atol)
