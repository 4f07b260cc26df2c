"""The block rule every streamable layer family gives stack.streaming: which input samples an
output range reads (`needed_input`) and how to compute exactly that range (`forward_range`),
emulating the layer's padding at the true signal edges. The families' rules live beside their
catalogue modules (convolution_blocks, transposed_blocks, resampling_blocks) and are registered
in BLOCK_RULES, by planned layer type; stack.streaming composes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from convscope.stack.layers.relation import Relation

if TYPE_CHECKING:  # annotations only: stack.plan does not import the catalogue
    from convscope.stack.plan import LayerPlan

Range = tuple[int, int]  # [start, stop) sample indices of one layer's signal


def reads(relation: Relation, out: Range) -> Range:
    """The input span [lo, hi) that outputs [a, b) (a < b) of a layer with `relation` read,
    past the edges too (padded indices): the family's relation is the one place its geometry
    is written. The ends are taken over whole output periods, [a, a + period) and
    [b - period, b): the first reading of each phase sets the low end, its last the high one
    (inputs move forward by in_period a period), and a phase that reads no input (a transposed
    conv's bias-only output) reads through its neighbours'. For a conv or pool (period 1) that
    is exactly outputs a and b - 1; a range shorter than a period may read a little more than
    it needs, never less."""
    a, b = out
    period = relation.out_period
    firsts = [bounds[0] for bounds in map(relation.bounds_at, range(a, a + period)) if bounds]
    lasts = [bounds[1] for bounds in map(relation.bounds_at, range(b - period, b)) if bounds]
    return min(firsts), max(lasts) + 1


@dataclass(frozen=True)
class LayerRule:
    """How one planned layer maps output ranges to input ranges, and computes a range."""

    plan: LayerPlan
    module: nn.Module

    @property
    def input_length(self) -> int:
        return self.plan.input_shape[-1]

    @property
    def output_length(self) -> int:
        return self.plan.output_shape[-1]

    def needed_input(self, out: Range) -> Range:
        """The real input samples (clipped to the signal) that output range `out` depends on."""
        raise NotImplementedError

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        """Output samples `out` from x, which holds input samples [x_start, x_start + len)."""
        raise NotImplementedError


class PointwiseRule(LayerRule):
    def needed_input(self, out: Range) -> Range:
        return out

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        return self.module(x[..., out[0] - x_start: out[1] - x_start])
