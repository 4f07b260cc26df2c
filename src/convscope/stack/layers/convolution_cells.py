"""Convolution family, stateful: Conv1d's cell keeps the tail of its (zero-padded) input from the
next output's first tap on; the left padding is zeros before the first sample, the right padding
is appended at flush, and outputs a stride skips are skipped as they arrive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch
import torch.nn.functional as F
from torch import nn

from convscope.stack.causal import CausalConv1d
from convscope.stack.layers.cell import Cell, Tail, unsupported

if TYPE_CHECKING:
    from convscope.stack.plan import LayerPlan


def one(value) -> int:
    return value[0] if isinstance(value, (tuple, list)) else value


class ConvCell(Cell):
    def __init__(self, module: nn.Module):
        with torch.no_grad():  # weight_norm recomputes g * v / |v| on each access: once here
            self.weight = module.weight.detach()
        self.bias = None if module.bias is None else module.bias.detach()
        self.kernel, self.stride = one(module.kernel_size), one(module.stride)
        self.dilation, self.groups = one(module.dilation), module.groups
        self.span = self.dilation * (self.kernel - 1) + 1  # input samples one output reads
        self.out_channels = module.out_channels


class Conv1dCell(ConvCell):
    """Output j reads padded input j*s + d*t, t < k; padded index = input index + left."""

    def __init__(self, module: nn.Module, left: int, right: int):
        super().__init__(module)
        self.left, self.right = left, right
        self.tail, self.next = Tail(), 0

    def push(self, x: torch.Tensor) -> torch.Tensor:
        if self._like is None and self.left:
            self.tail.append(x.new_zeros((*x.shape[:-1], self.left)))
        self.remember(x)
        self.tail.append(x)
        return self._emit()

    def flush(self) -> torch.Tensor:
        like = self._like
        self.tail.append(like.new_zeros((like.shape[0], self.weight.shape[1] * self.groups,
                                         self.right)))
        return self._emit()

    def _emit(self) -> torch.Tensor:
        ready = (self.tail.end - self.span) // self.stride + 1  # outputs whose taps have arrived
        if ready <= self.next:
            return self.empty()
        lo, hi = self.next * self.stride, (ready - 1) * self.stride + self.span
        y = F.conv1d(self.tail.window(lo, hi), self.weight, self.bias, self.stride, 0,
                     self.dilation, self.groups)
        self.next = ready
        self.tail.drop(ready * self.stride)
        return y

    def state_bytes(self) -> int:
        return self.tail.nbytes()


def conv1d_padding(plan: LayerPlan, module: nn.Module) -> tuple[int, int]:
    """(left, right) zeros of the layer's padding; refused where padding copies samples."""
    padding = zeros_padding(module)
    if padding is None:
        raise unsupported(plan, f"Conv1d padding_mode={module.padding_mode!r} copies signal "
                                "samples into the padding")
    return padding


def zeros_padding(module: nn.Module) -> Optional[tuple[int, int]]:
    """(left, right) zeros a Conv1d pads its input with; None where its padding_mode copies
    signal samples instead (no cell can supply those before the samples arrive)."""
    if getattr(module, "padding_mode", "zeros") != "zeros":
        return None
    if isinstance(module, CausalConv1d):
        return module.causal_padding, 0
    k, d = one(module.kernel_size), one(module.dilation)
    if module.padding == "same":
        left = d * (k - 1) // 2
        return left, d * (k - 1) - left
    if module.padding == "valid":
        return 0, 0
    p = one(module.padding)
    return p, p


def conv1d_cell(plan: LayerPlan, module: nn.Module) -> Cell:
    return Conv1dCell(module, *conv1d_padding(plan, module))


CELLS = {"Conv1d": conv1d_cell}
