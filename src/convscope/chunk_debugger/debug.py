"""The chunk debugger: why a stack run chunk by chunk clicks at the boundaries.

Naive real-time code cuts the input into chunks and runs each one through the whole stack on its
own, with no context from its neighbours, then concatenates the outputs. Every layer then pads
each chunk's edges as if they were the signal's edges, so the output samples whose kernels reach
across a boundary come out wrong. This module runs exactly that against the one-shot forward and
says where the outputs first differ, how large the error is around each boundary, and which
layer's context was too short, by how much:

- the context each layer needs around a chunk is stack.streaming's arithmetic (the same
  `needed_input` rules that make block streaming exact), read at an interior chunk;
- each layer's own share of the error is measured by ablation: every layer gets its exact input
  (the one-shot trace), only that layer is run chunk by chunk, the layers after it run one-shot.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from convscope.chunk_debugger.findings import (
    ChunkReport,
    ErrorSize,
    LayerContext,
    LayerFinding,
    boundary_findings,
    chunk_length,
    error_size,
    run_chunked,
)
from convscope.config.schema import ChunksConfig, LayerConfig, RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.single import stack_input
from convscope.stack.backends import safe_kernels
from convscope.stack.build import build_stack
from convscope.stack.plan import LayerPlan, plan_stack
from convscope.stack.rates import exact_rate, layer_rates
from convscope.stack.streaming import LayerRule, Range, layer_rules, unsupported_reason
from convscope.stack.trace import pick_device, trace_stack

log = logging.getLogger("convscope")

# The interior chunk whose context is read starts this many stack-input samples (or more) into a
# long planned signal, so no layer's needed range is clipped by the signal's own start.
INTERIOR_OFFSET = 1 << 16


def layer_label(plan: LayerPlan) -> str:
    """A layer as a vocoder engineer names it: ConvTranspose1d k5 s2 p2 op1 (d only when > 1)."""
    kw = plan.kwargs
    if plan.type not in ("Conv1d", "ConvTranspose1d"):
        return plan.type
    parts = [plan.type, f"k{kw['kernel_size']}", f"s{kw['stride']}", f"p{kw['padding']}"]
    if kw.get("output_padding"):
        parts.append(f"op{kw['output_padding']}")
    if kw["dilation"] != 1:
        parts.append(f"d{kw['dilation']}")
    return " ".join(parts)


def chunk_plans(layers: list[LayerConfig], channels: int, samples: int, input_rate: Fraction,
                seconds: float) -> list[LayerPlan]:
    """The stack planned on one chunk; a chunk too short for it names chunks.seconds."""
    try:
        return plan_stack(layers, (1, channels, samples))
    except ConvscopeError as exc:
        shortest = _shortest_chunk(layers, channels, samples)
        need = "" if shortest is None else (
            f"; the stack needs at least {shortest} (chunks.seconds >= "
            f"{float(shortest / input_rate):.6g})")
        raise ConvscopeError(
            f"chunks.seconds: a {seconds} s chunk is {samples} stack-input samples, too short "
            f"for the stack to produce any output ({exc}){need}") from exc


def _shortest_chunk(layers: list[LayerConfig], channels: int, tried: int,
                    limit: int = 1 << 20) -> Optional[int]:
    """The fewest stack-input samples the stack takes (plan arithmetic only, no forward)."""
    def plans(n: int) -> bool:
        try:
            plan_stack(layers, (1, channels, n))
            return True
        except ConvscopeError:
            return False

    low, high = tried, tried + 1
    while not plans(high):  # lengths only grow: double until it plans, then bisect
        low, high = high, high * 2
        if high > limit:
            return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if plans(middle) else (middle, high)
    return high


def _stack_needed(rules: list[LayerRule], out: Range, upto: Optional[int] = None) -> Range:
    """The stack-input range that output range `out` of layer `upto` (the last by default)
    depends on, walking streaming's rules backwards as its block planner does."""
    want = out
    for rule in reversed(rules[: (len(rules) if upto is None else upto + 1)]):
        want = rule.needed_input(want)
    return want


@dataclass(frozen=True)
class Geometry:
    """Chunk lengths at every layer: n[i] samples go into layer i, n[i + 1] come out."""

    lengths: list[int]

    @classmethod
    def of(cls, plans: list[LayerPlan]) -> "Geometry":
        return cls([plans[0].input_shape[-1]] + [plan.output_shape[-1] for plan in plans])


def layer_contexts(layers: list[LayerConfig], plans: list[LayerPlan], stack: nn.Sequential,
                   geometry: Geometry, input_rate: Fraction
                   ) -> tuple[list[LayerContext], Range, Range]:
    """Per layer, the context streaming's rules need around an interior chunk; the whole stack's
    context in stack-input samples; and how many output samples before / after a boundary read
    input across it (the ones the naive run can get wrong)."""
    n, channels = geometry.lengths, plans[0].input_shape[1]
    k = max(3, -(-INTERIOR_OFFSET // n[0]))  # the interior chunk's number
    long_plans = plan_stack(layers, (1, channels, (2 * k + 1) * n[0]))
    rules = layer_rules(long_plans, stack)
    ratios = [Fraction(1)] + layer_rates(long_plans, 1)
    contexts = []
    for i, rule in enumerate(rules):
        start, stop = k * n[i], (k + 1) * n[i]
        lo, hi = rule.needed_input((k * n[i + 1], (k + 1) * n[i + 1]))
        left, right = max(0, start - lo), max(0, hi - stop)
        contexts.append(LayerContext(left, right, math.ceil(left / ratios[i]),
                                     math.ceil(right / ratios[i])))
    out = (k * n[-1], (k + 1) * n[-1])
    lo, hi = _stack_needed(rules, out)
    stack_context = (max(0, k * n[0] - lo), max(0, hi - (k + 1) * n[0]))
    inside = (k * n[0], (k + 1) * n[0])
    # needed ranges move forward with the output sample: bisect for the first output of the
    # chunk that reads nothing before it and the first that reads past its end
    clean_from = _first(out[0], out[1], lambda j: _stack_needed(rules, (j, j + 1))[0] >= inside[0])
    dirty_from = _first(out[0], out[1], lambda j: _stack_needed(rules, (j, j + 1))[1] > inside[1])
    return contexts, stack_context, (out[1] - dirty_from, clean_from - out[0])


def _first(lo: int, hi: int, test) -> int:
    """The first j in [lo, hi) where the monotone `test` holds (hi if none)."""
    while lo < hi:
        middle = (lo + hi) // 2
        if test(middle):
            hi = middle
        else:
            lo = middle + 1
    return lo


def debug_chunks(cfg: RunConfig, chunks: ChunksConfig, base_dir: Path) -> ChunkReport:
    """Load the input as the one-shot path does, run the stack one-shot and chunk by chunk, and
    attribute the difference to the layers."""
    device = pick_device(cfg.device)
    source = stack_input(cfg, base_dir)
    input_rate = exact_rate(source.sample_rate, "data.sr")
    channels, total = source.shape[1], source.shape[-1]
    samples = chunk_length(chunks.seconds, input_rate)
    if not 0 < chunks.tolerance < math.inf:
        raise ConvscopeError(f"chunks.tolerance: must be > 0, got {chunks.tolerance!r}")
    plans = plan_stack(cfg.model.layers, source.shape)
    geometry = Geometry.of(chunk_plans(cfg.model.layers, channels, samples, input_rate,
                                       chunks.seconds))
    stack = build_stack(plans, cfg.seed).to(device)
    full, tail = divmod(total, samples)
    pieces = [geometry] * full
    if tail:
        try:
            pieces.append(Geometry.of(plan_stack(cfg.model.layers, (1, channels, tail))))
            tail = 0
        except ConvscopeError:
            pass  # too short for the stack: a real-time loop would wait for more input
    if not pieces:
        raise ConvscopeError(f"chunks.seconds: a {chunks.seconds} s chunk is {samples} samples, "
                             f"longer than the whole input ({total})")

    x = torch.as_tensor(source.samples[None], dtype=torch.float32, device=device)
    traces = trace_stack(stack, source.samples[None], device)
    exact = traces[-1].output[0]
    used = total - tail
    with torch.no_grad(), safe_kernels(stack):  # the one-shot trace's kernels, piece by piece
        naive = run_chunked(stack, x[..., :used], _cuts(pieces, 0)).cpu().numpy()[0]

    compared = min(exact.shape[-1], naive.shape[-1])
    peak = float(np.max(np.abs(exact))) or 1.0
    atol = chunks.tolerance * peak
    signal_rms = float(np.sqrt(np.mean(exact[..., :compared].astype(np.float64) ** 2)))
    diff = naive[..., :compared] - exact[..., :compared]
    outputs = [piece.lengths[-1] for piece in pieces]
    boundaries = boundary_findings(diff, outputs, signal_rms, atol, input_rate * _ratio(plans))

    layers = _ablations(stack, plans, traces, x, pieces, exact[..., :compared], signal_rms, atol)
    reason = unsupported_reason(plans)
    contexts, stack_context, affected = (
        ([None] * len(plans), None, None) if reason else
        layer_contexts(cfg.model.layers, plans, stack, geometry, input_rate))
    findings = [LayerFinding(plan.index, plan.key, layer_label(plan), context, error)
                for plan, context, error in zip(plans, contexts, layers)]
    return ChunkReport(samples, input_rate, input_rate * _ratio(plans), outputs, exact.shape[-1],
                       tail, atol, error_size(diff, signal_rms, atol), boundaries, findings,
                       stack_context, affected, reason, exact, naive)


def _ratio(plans: list[LayerPlan]) -> Fraction:
    return layer_rates(plans, 1)[-1]


def _cuts(pieces: list[Geometry], layer: int) -> list[int]:
    """Where the chunks meet in layer `layer`'s input (the last layer + 1: the output)."""
    return [int(c) for c in np.cumsum([piece.lengths[layer] for piece in pieces])[:-1]]


def _ablations(stack: nn.Sequential, plans: list[LayerPlan], traces, x: torch.Tensor,
               pieces: list[Geometry], exact: np.ndarray, signal_rms: float,
               atol: float) -> list[ErrorSize]:
    """Each layer's own error: its exact input (the one-shot trace) cut where the naive run's
    chunks meet in that layer, that layer run piece by piece, every later layer one-shot."""
    errors = []
    device = x.device
    with torch.no_grad(), safe_kernels(stack):
        for i in range(len(plans)):
            layer_in = x if i == 0 else torch.as_tensor(traces[i - 1].output, device=device)
            y = run_chunked(stack[i], layer_in, _cuts(pieces, i))
            if i + 1 < len(plans):
                y = stack[i + 1:](y)
            y = y.cpu().numpy()[0]
            compared = min(y.shape[-1], exact.shape[-1])
            errors.append(error_size(y[..., :compared] - exact[..., :compared], signal_rms,
                                     atol))
    return errors
