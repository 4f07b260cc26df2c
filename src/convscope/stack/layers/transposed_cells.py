"""Transposed convolution family, stateful: each input chunk is transposed-convolved once and
overlap-added into an accumulator; an output is final once no later input can add to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch
import torch.nn.functional as F
from torch import nn

from convscope.stack.causal import CausalConvTranspose1d
from convscope.stack.layers.cell import Cell
from convscope.stack.layers.convolution_cells import ConvCell, one

if TYPE_CHECKING:
    from convscope.stack.plan import LayerPlan


class ConvTranspose1dCell(ConvCell):
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


def conv_transpose1d_cell(_plan: LayerPlan, module: nn.Module) -> Cell:
    return transposed_cell(module)


def transposed_cell(module: nn.Module) -> ConvTranspose1dCell:
    """The cell of a built ConvTranspose1d (a config stack's or any model's)."""
    if isinstance(module, CausalConvTranspose1d):  # the full output's first L_in*s samples
        return ConvTranspose1dCell(module, 0, -module.right_trim)
    p, op = one(module.padding), one(module.output_padding)
    return ConvTranspose1dCell(module, p, op - p)


CELLS = {"ConvTranspose1d": conv_transpose1d_cell}
