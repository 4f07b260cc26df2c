"""Which input samples each output sample of an op reads (Relation), and which stack-input
samples it reaches through every op before it (Reach): periodic, with exact rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from fractions import Fraction
from typing import Optional


@dataclass(frozen=True)
class Relation:
    """Which input indices one module's output index depends on, periodically: output j + n *
    out_period depends on the indices `deps[j % out_period]` + n * in_period (j = phase + n * ...).
    """

    out_period: int
    in_period: int
    deps: tuple[tuple[int, ...], ...]

    def at(self, j: int) -> tuple[int, ...]:
        n, phase = divmod(j, self.out_period)
        return tuple(i + n * self.in_period for i in self.deps[phase])

    @cached_property
    def _bounds(self) -> tuple[Optional[tuple[int, int]], ...]:
        return tuple((min(d), max(d)) if d else None for d in self.deps)

    def bounds_at(self, j: int) -> Optional[tuple[int, int]]:
        """The first and last input index output j reads; None when it reads none."""
        n, phase = divmod(j, self.out_period)
        bounds = self._bounds[phase]
        return None if bounds is None else (bounds[0] + n * self.in_period,
                                            bounds[1] + n * self.in_period)


@dataclass(frozen=True)
class Reach:
    """First and last stack-input index each output index of a layer depends on: output j +
    n * period reaches spans[j % period] shifted by n * shift. A span is None when that output
    phase depends on no input (a transposed conv's phase no kernel tap lands on: bias only)."""

    period: int
    shift: int
    spans: tuple[Optional[tuple[int, int]], ...]

    def at(self, j: int) -> Optional[tuple[int, int]]:
        n, phase = divmod(j, self.period)
        span = self.spans[phase]
        return None if span is None else (span[0] + n * self.shift, span[1] + n * self.shift)

    @property
    def rate(self) -> Fraction:
        """Output samples per stack-input sample."""
        return Fraction(self.period, self.shift)

    def through(self, relation: Relation) -> Reach:
        """The reach of a layer with `relation` taking this reach's output as its input."""
        common = math.lcm(relation.in_period, self.period)
        period = common // relation.in_period * relation.out_period
        shift = common // self.period * self.shift
        spans = []
        if self._monotone:  # the hull of the reached spans is that of the outermost indices
            for j in range(period):
                bounds = relation.bounds_at(j)
                spans.append(None if bounds is None
                             else (self.at(bounds[0])[0], self.at(bounds[1])[1]))
            return Reach(period, shift, tuple(spans))
        for j in range(period):
            reached = [s for s in map(self.at, relation.at(j)) if s is not None]
            spans.append((min(s[0] for s in reached), max(s[1] for s in reached))
                         if reached else None)
        return Reach(period, shift, tuple(spans))

    @cached_property
    def _monotone(self) -> bool:
        """Every output reaches some input, and neither end of the span ever moves back as the
        output index grows (true of every conv, pad, crop and upsampler, and of their hulls)."""
        if any(span is None for span in self.spans):
            return False
        ends = [*self.spans, self.at(self.period)]
        return all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(ends, ends[1:]))

    def union(self, other: Reach) -> Optional[Reach]:
        """Outputs that add two paths (x + f(x), parallel branches): the hull of both spans.
        None when the paths run at different rates (no shape-keeping sum could add them)."""
        if self == other:
            return self
        if self.rate != other.rate:
            return None
        period = math.lcm(self.period, other.period)
        spans = []
        for j in range(period):
            pair = [s for s in (self.at(j), other.at(j)) if s is not None]
            spans.append((min(s[0] for s in pair), max(s[1] for s in pair)) if pair else None)
        return Reach(period, period // self.period * self.shift, tuple(spans))

    def receptive_field(self) -> Optional[int]:
        sizes = [last - first + 1 for first, last in filter(None, self.spans)]
        return max(sizes) if sizes else None

    def lookahead(self) -> Optional[int]:
        """Max over phases of the depended-on indices after the output's time j * shift/period."""
        counts = []
        for j, span in enumerate(self.spans):
            if span is not None:
                now = (j * self.shift) // self.period  # the last index not in the future
                counts.append(max(0, span[1] - max(now, span[0] - 1)))
        return max(counts) if counts else None


IDENTITY = Relation(1, 1, ((0,),))
STACK_INPUT = Reach(1, 1, ((0, 0),))
