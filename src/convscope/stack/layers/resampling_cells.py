"""Resampling family, stateful: Upsample's cells (integer scale). Nearest has no state; linear
keeps the sample its next output blends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from convscope.stack.layers.cell import Cell, Tail

if TYPE_CHECKING:
    from convscope.stack.plan import LayerPlan


class NearestUpsampleCell(Cell):
    def __init__(self, scale: int, channels: int):
        self.scale, self.out_channels = scale, channels

    def push(self, x: torch.Tensor) -> torch.Tensor:
        self.remember(x)
        return x.repeat_interleave(self.scale, dim=-1)


class LinearUpsampleCell(Cell):
    """torch's linear upsample (align_corners=False), integer scale s: output j blends input
    left = floor(src) and left + 1 (clamped to the last sample), src = max(0, (j + 1/2)/s - 1/2),
    weights computed in the signal's dtype as torch does. Output j waits for left + 1 to arrive
    (even where its weight is 0: one input sample later than the receptive field says)."""

    def __init__(self, scale: int, channels: int):
        self.scale, self.out_channels = scale, channels
        self.tail, self.next = Tail(), 0

    def _source(self, j: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        source = ((j.to(dtype) + 0.5) * (1.0 / self.scale) - 0.5).clamp(min=0)
        left = source.long()
        return left, (source - left.to(dtype)).clamp(0, 1)

    def _emit(self, final: bool) -> torch.Tensor:
        end = self.tail.end  # outputs j < end * s exist once `end` samples have arrived
        j = torch.arange(self.next, end * self.scale)
        dtype = self._like.dtype
        left, weight = self._source(j, dtype)
        count = len(j) if final else int((left + 1 < end).sum())  # left is monotone in j
        if not count:
            return self.empty()
        j, left, weight = j[:count], left[:count], weight[:count]
        right = (left + 1).clamp(max=end - 1)
        x = self.tail.window(self.tail.start, end)
        weight = weight.to(x.device)
        y = (x.index_select(-1, (left - self.tail.start).to(x.device)) * (1 - weight)
             + x.index_select(-1, (right - self.tail.start).to(x.device)) * weight)
        self.next = int(j[-1]) + 1
        self.tail.drop(int(self._source(torch.tensor([self.next]), dtype)[0][0]))
        return y

    def push(self, x: torch.Tensor) -> torch.Tensor:
        self.remember(x)
        self.tail.append(x)
        return self._emit(final=False) if self.tail.end else self.empty()

    def flush(self) -> torch.Tensor:
        return self._emit(final=True) if self.tail.end else self.empty()

    def state_bytes(self) -> int:
        return self.tail.nbytes()


def upsample_cell(plan: LayerPlan, _module: nn.Module) -> Cell:
    scale, channels = int(plan.kwargs["scale_factor"]), plan.output_shape[1]
    if plan.kwargs["mode"] == "linear":
        return LinearUpsampleCell(scale, channels)
    return NearestUpsampleCell(scale, channels)


CELLS = {"Upsample": upsample_cell}
