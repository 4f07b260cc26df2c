"""What the chunk debugger finds, for a config stack or any model: the error's size over a
stretch of output, each layer's context and own error, each boundary's error, the whole report;
and the naive run itself (each chunk on its own, outputs concatenated)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import pairwise
from typing import Optional

import numpy as np
import torch
from torch import nn

from convscope.errors import ConvscopeError
from convscope.stack.rates import rate_text
from convscope.stack.streaming import Range

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
    context: Optional[LayerContext]  # None: no arithmetic knows this layer's context
    # naive chunking at this layer only, every other layer exact; None: not measurable (the
    # pieces' outputs do not add up to the layer's own length, so nothing can stand in for it)
    error: Optional[ErrorSize]

    @property
    def rms(self) -> float:
        return 0.0 if self.error is None else self.error.rms

    def as_json(self) -> dict:
        return {"index": self.index, "key": self.key, "layer": self.label,
                "context": None if self.context is None else self.context.as_json(),
                "error": None if self.error is None else self.error.as_json()}


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
    """Everything the debugger found; report.report_text words it, `as_json()` is chunks.json."""

    chunk_samples: int  # stack-input samples (frames) per chunk (a model's input samples)
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
    # any model: each chunk run with stack_context around it, cropped, against the one shot
    overlap_check: Optional[ErrorSize] = None
    input_unit: str = "stack-input samples"  # what a chunk is counted in, for the text
    name: str = "the model"  # what the text calls the model

    @property
    def overlap_ms(self) -> Optional[Range]:
        """stack_context in milliseconds at the input's rate."""
        if self.stack_context is None:
            return None
        return tuple(float(Fraction(n) / self.input_rate * 1000) for n in self.stack_context)

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
                 if (layer.context is not None and layer.context.short)
                 or (layer.error is not None and layer.error.differing)]
        return sorted(found, key=lambda layer: -layer.rms)

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
                "left": self.stack_context[0], "right": self.stack_context[1],
                "left_ms": self.overlap_ms[0], "right_ms": self.overlap_ms[1]},
            "overlap_check": None if self.overlap_check is None else
            self.overlap_check.as_json(),
            "affected_output_samples": None if self.affected is None else {
                "before_boundary": self.affected[0], "after_boundary": self.affected[1]},
            "no_context_rule": self.no_rule,
        }


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


def run_chunked(modules: nn.Module, x: torch.Tensor, cuts: list[int]) -> torch.Tensor:
    """`modules` on each piece of x between consecutive `cuts` on its own, outputs concatenated:
    what naive real-time code does."""
    edges = [0] + [c for c in cuts if 0 < c < x.shape[-1]] + [x.shape[-1]]
    pieces = [modules(x[..., a:b]) for a, b in pairwise(edges) if b > a]
    return torch.cat(pieces, dim=-1)


def boundary_findings(diff: np.ndarray, outputs: list[int], signal_rms: float, atol: float,
                      output_rate: Fraction) -> list[BoundaryFinding]:
    """Per boundary, the error over the output nearer to it than to any other boundary."""
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
