"""The cell every stateful-streamable layer family gives stack.stateful: `push(chunk) -> new
output samples`, `flush() -> the rest`, emitting each output as soon as the input samples it reads
have arrived and keeping only what later outputs still need (`Tail`). The families' cells live
beside their catalogue modules (convolution_cells, transposed_cells, resampling_cells); the
pointwise cell is here, with the identity a residual's skip path uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional

import torch
from torch import nn

from convscope.errors import ConvscopeError

if TYPE_CHECKING:  # annotations only: stack.plan does not import the catalogue
    from convscope.stack.plan import LayerPlan


class Tail:
    """Samples [start, end) of one signal that a cell still needs. `drop(i)` forgets samples
    before i; i may lie past `end` (a stride skips them): those are skipped as they arrive."""

    def __init__(self) -> None:
        self.data: Optional[torch.Tensor] = None
        self.start = 0
        self.end = 0  # samples received so far

    def append(self, x: torch.Tensor) -> None:
        skip = min(max(self.start - self.end, 0), x.shape[-1])
        self.end += x.shape[-1]
        x = x[..., skip:]
        self.data = x if self.data is None else torch.cat([self.data, x], dim=-1)

    def window(self, lo: int, hi: int) -> torch.Tensor:
        return self.data[..., lo - self.start: hi - self.start]

    def drop(self, upto: int) -> None:
        if upto > self.start:
            if self.data is not None:
                self.data = self.data[..., upto - self.start:]
            self.start = upto

    def nbytes(self) -> int:
        return 0 if self.data is None else self.data.numel() * self.data.element_size()


class Cell:
    """One layer's streaming state. push and flush return (N, out_channels, n) tensors."""

    out_channels: int
    _like: Optional[torch.Tensor] = None  # a zero-length tensor of the stream's N, dtype, device

    def push(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def flush(self) -> torch.Tensor:
        return self.empty()

    def remember(self, x: torch.Tensor) -> None:
        if self._like is None:
            self._like = x[:, :0, :0]

    def empty(self) -> torch.Tensor:
        like = self._like
        return like.new_zeros((like.shape[0], self.out_channels, 0))

    def state_bytes(self) -> int:
        return 0


class PointwiseCell(Cell):
    def __init__(self, module: nn.Module, channels: int):
        self.module, self.out_channels = module, channels

    def push(self, x: torch.Tensor) -> torch.Tensor:
        self.remember(x)
        return self.module(x) if x.shape[-1] else x


class IdentityCell(PointwiseCell):
    def __init__(self, channels: int):
        super().__init__(nn.Identity(), channels)


# A family's cell for one planned leaf layer and its built module, registered in its CELLS
CellFactory = Callable[["LayerPlan", nn.Module], Cell]


def unsupported(plan: LayerPlan, why: str) -> ConvscopeError:
    return ConvscopeError(f"{plan.key}: {why}; stream.mode=stateful has no cell for it "
                          "(stream.mode=overlap streams it)")


def pointwise_cell(plan: LayerPlan, module: nn.Module) -> Cell:
    return PointwiseCell(module, plan.output_shape[1])
