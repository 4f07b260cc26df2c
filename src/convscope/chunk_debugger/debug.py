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
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from convscope.config.schema import ChunksConfig, LayerConfig, RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.oneshot import stack_input
from convscope.stack.backends import safe_kernels
from convscope.stack.build import build_stack
from convscope.stack.plan import LayerPlan, plan_stack
from convscope.stack.rates import exact_rate, layer_rates, rate_text
from convscope.stack.streaming import LayerRule, Range, layer_rules, unsupported_reason
from convscope.stack.trace import pick_device, trace_stack

log = logging.getLogger("convscope")

# The interior chunk whose context is read starts this many stack-input samples (or more) into a
# long planned signal, so no layer's needed range is clipped by the signal's own start.
INTERIOR_OFFSET = 1 << 16


@dataclass(frozen=True)
class ErrorSize:
    """How far the naive output is from the exact one over some stretch (all channels)."""

    max_abs: float
    rms: float
    db: Optional[float]  # 20 log10(rms / the exact output's RMS); None: no error at all
    differing: int  # samples where some channel differs by more than the tolerance
    first: Optional[int]  # the first of them (output sample index), None if none

    def as_json(self) -> dict:
        return {"max_abs": self.max_abs, "rms": self.rms, "db": self.db,
                "differing_samples": self.differing, "first_differing_sample": self.first}


def error_size(diff: np.ndarray, signal_rms: float, atol: float, offset: int = 0) -> ErrorSize:
    """`diff` (C, L): naive minus exact; `offset`: the output index of diff[..., 0]."""
    if diff.shape[-1] == 0:
        return ErrorSize(0.0, 0.0, None, 0, None)
    worst = np.max(np.abs(diff), axis=0)
    rms = float(np.sqrt(np.mean(diff.astype(np.float64) ** 2)))
    over = np.flatnonzero(worst > atol)
    db = 20 * math.log10(rms / signal_rms) if rms > 0 and signal_rms > 0 else None
    return ErrorSize(float(worst.max()), rms, db, int(over.size),
                     int(over[0]) + offset if over.size else None)


@dataclass(frozen=True)
class LayerContext:
    """The samples one layer reads beyond its chunk, on each side: what exact streaming gives it
    and the naive run does not (the naive run gives 0, so this is the shortfall)."""

    left: int  # in the layer's own input samples
    right: int
    left_input: int  # the same stretches in stack-input samples (rounded up)
    right_input: int

    @property
    def short(self) -> bool:
        return self.left > 0 or self.right > 0

    def as_json(self) -> dict:
        return {"left": self.left, "right": self.right, "left_stack_input": self.left_input,
                "right_stack_input": self.right_input, "given": 0}


@dataclass(frozen=True)
class LayerFinding:
    """One top-level layer: its missing context and the error it causes on its own."""

    index: int
    key: str
    label: str  # "ConvTranspose1d k5 s2 p2 op1"
    context: Optional[LayerContext]  # None: stack.streaming has no rule for this stack
    error: ErrorSize  # naive chunking at this layer only, every other layer exact

    def as_json(self) -> dict:
        return {"index": self.index, "key": self.key, "layer": self.label,
                "context": None if self.context is None else self.context.as_json(),
                "error": self.error.as_json()}


@dataclass(frozen=True)
class BoundaryFinding:
    """The error in the stretch of output nearer one boundary than any other."""

    number: int  # 1: between chunk 0 and chunk 1
    sample: int  # output index of the first sample of the later chunk
    seconds: float
    error: ErrorSize

    def as_json(self) -> dict:
        return {"boundary": self.number, "sample": self.sample, "seconds": self.seconds,
                **self.error.as_json()}


@dataclass
class ChunkReport:
    """Everything the debugger found; `text()` is the console report, `as_json()` chunks.json."""

    chunk_samples: int  # stack-input samples (frames) per chunk
    input_rate: Fraction
    output_rate: Fraction
    chunk_outputs: list[int]  # output samples each naive chunk gave
    exact_length: int
    dropped_tail: int  # stack-input samples at the end too short to be a chunk the stack takes
    tolerance: float  # absolute: the config's fraction times the exact output's peak
    overall: ErrorSize
    boundaries: list[BoundaryFinding]
    layers: list[LayerFinding]
    stack_context: Optional[Range]  # (left, right) stack-input samples exact streaming reads
    affected: Optional[Range]  # (before, after) output samples by a boundary that need it
    no_rule: Optional[str] = None  # why there is no context arithmetic, if there is none
    exact: np.ndarray = field(default=None, repr=False)  # (C, L) one-shot output
    naive: np.ndarray = field(default=None, repr=False)  # (C, L') chunks concatenated

    @property
    def boundary_samples(self) -> list[int]:
        return [int(b) for b in np.cumsum(self.chunk_outputs)[:-1]]

    @property
    def expected_chunk_output(self) -> Fraction:
        return self.chunk_samples * self.output_rate / self.input_rate

    def nearest_boundary(self, sample: int) -> Optional[int]:
        """1-based number of the boundary closest to output sample `sample`."""
        samples = self.boundary_samples
        if not samples:
            return None
        return 1 + int(np.argmin([abs(sample - b) for b in samples]))

    def culprits(self) -> list[LayerFinding]:
        """Layers with a context shortfall, or an error of their own beyond the tolerance (float
        rounding of a chunk vs the whole signal is not one), worst error first."""
        found = [layer for layer in self.layers
                 if (layer.context is not None and layer.context.short) or layer.error.differing]
        return sorted(found, key=lambda layer: -layer.error.rms)

    def as_json(self) -> dict:
        first = self.overall.first
        nearest = None if first is None else self.nearest_boundary(first)
        worst = self.culprits()[0] if self.culprits() and self.overall.first is not None else None
        return {
            "chunk": {"seconds": float(self.chunk_samples / self.input_rate),
                      "stack_input_samples": self.chunk_samples,
                      "output_samples": self.chunk_outputs[0],
                      "expected_output_samples": float(self.expected_chunk_output),
                      "count": len(self.chunk_outputs), "dropped_tail": self.dropped_tail},
            "input_rate": float(self.input_rate), "output_rate": float(self.output_rate),
            "output_rate_fraction": str(self.output_rate),
            "lengths": {"exact": self.exact_length, "naive": int(sum(self.chunk_outputs))},
            "tolerance": self.tolerance,
            "differs": self.overall.first is not None,
            "first_difference": None if first is None else {
                "sample": first, "seconds": float(first / self.output_rate),
                "nearest_boundary": nearest,
                "boundary_sample": None if nearest is None else self.boundary_samples[nearest - 1]},
            "error": self.overall.as_json(),
            "boundaries": [b.as_json() for b in self.boundaries],
            "layers": [layer.as_json() for layer in self.layers],
            "culprits": [layer.key for layer in self.culprits()],
            "worst_layer": None if worst is None else worst.key,
            "stack_context": None if self.stack_context is None else {
                "left": self.stack_context[0], "right": self.stack_context[1]},
            "affected_output_samples": None if self.affected is None else {
                "before_boundary": self.affected[0], "after_boundary": self.affected[1]},
            "no_context_rule": self.no_rule,
        }


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


def chunk_length(seconds: float, input_rate: Fraction) -> int:
    """chunks.seconds as whole stack-input samples (frames for a feature input)."""
    if not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
        raise ConvscopeError(f"chunks.seconds: a chunk must be longer than 0 s, got {seconds!r}")
    samples = round(seconds * input_rate)
    if samples < 1:
        raise ConvscopeError(
            f"chunks.seconds: {seconds} s is shorter than one stack-input sample at "
            f"{rate_text(input_rate)} Hz (1 sample is {float(1 / input_rate):.6g} s)")
    return samples


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


def run_chunked(modules: nn.Module, x: torch.Tensor, cuts: list[int]) -> torch.Tensor:
    """`modules` on each piece of x between consecutive `cuts` on its own, outputs concatenated:
    what naive real-time code does."""
    edges = [0] + [c for c in cuts if 0 < c < x.shape[-1]] + [x.shape[-1]]
    pieces = [modules(x[..., a:b]) for a, b in pairwise(edges) if b > a]
    return torch.cat(pieces, dim=-1)


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
    boundaries = _boundary_findings(diff, outputs, signal_rms, atol, plans, input_rate)

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


def _boundary_findings(diff: np.ndarray, outputs: list[int], signal_rms: float, atol: float,
                       plans: list[LayerPlan], input_rate: Fraction) -> list[BoundaryFinding]:
    """Per boundary, the error over the output nearer to it than to any other boundary."""
    output_rate = input_rate * _ratio(plans)
    ends = [int(c) for c in np.cumsum(outputs)]
    marks = ends[:-1]
    found = []
    for number, sample in enumerate(marks, start=1):
        before = 0 if number == 1 else (marks[number - 2] + sample) // 2
        after = ends[-1] if number == len(marks) else (sample + marks[number]) // 2
        after = min(after, diff.shape[-1])
        if before >= after:
            break
        found.append(BoundaryFinding(number, sample, float(sample / output_rate),
                                     error_size(diff[..., before:after], signal_rms, atol,
                                                before)))
    return found


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
