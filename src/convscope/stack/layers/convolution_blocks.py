"""Convolution family, streamed: Conv1d's block rule (zeros, reflect and replicate padding at the
true edges; causal: all its padding on the left, LayerPlan.left_padding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from convscope.stack.layers.block_rule import LayerRule, Range, reads
from convscope.stack.layers.convolution import conv_relation


class Conv1dRule(LayerRule):
    """Output j reads padded input j*s - left_pad + d*t for taps t in [0, k): conv_relation."""

    @property
    def left_pad(self) -> int:
        return self.plan.left_padding

    def padded_input(self, out: Range) -> Range:
        """The padded-input span outputs [a, b) read: the family's relation (conv_relation)."""
        kw = self.plan.kwargs
        relation = conv_relation(kw["kernel_size"], kw["stride"], self.left_pad, kw["dilation"])
        return reads(relation, out)

    def needed_input(self, out: Range) -> Range:
        if out[1] <= out[0]:
            return (0, 0)
        lo, hi = self.padded_input(out)
        length = self.input_length
        start, stop = max(lo, 0), min(hi, length)
        if self.plan.kwargs["padding_mode"] == "zeros":
            return (start, max(start, stop))
        # reflect/replicate copy samples near the edge into the padding: include them
        mapped = [self._map(i) for i in (lo, min(hi, 0) - 1, max(lo, length), hi - 1)
                  if lo <= i < hi and (i < 0 or i >= length)]
        if stop > start:
            mapped += [start, stop - 1]
        return (min(mapped), max(mapped) + 1)

    def _map(self, i: int) -> int:
        length = self.input_length
        if self.plan.kwargs["padding_mode"] == "replicate":
            return min(max(i, 0), length - 1)
        return -i if i < 0 else 2 * (length - 1) - i  # reflect (padding < length, checked)

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        kw = self.plan.kwargs
        if out[1] <= out[0]:
            return x.new_zeros((x.shape[0], kw["out_channels"], 0))
        lo, hi = self.padded_input(out)
        padded = self._gather(x, x_start, lo, hi)
        m = self.module
        return F.conv1d(padded, m.weight, m.bias, kw["stride"], 0, kw["dilation"], kw["groups"])

    def _gather(self, x: torch.Tensor, x_start: int, lo: int, hi: int) -> torch.Tensor:
        """Input samples [lo, hi) with the layer's padding where they run past the signal."""
        length = self.input_length
        start, stop = max(lo, 0), min(hi, length)
        parts = []
        if lo < min(hi, 0):
            parts.append(self._pad(x, x_start, range(lo, min(hi, 0))))
        if stop > start:
            parts.append(x[..., start - x_start: stop - x_start])
        if max(lo, length) < hi:
            parts.append(self._pad(x, x_start, range(max(lo, length), hi)))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def _pad(self, x: torch.Tensor, x_start: int, indices: range) -> torch.Tensor:
        if self.plan.kwargs["padding_mode"] == "zeros":
            return x.new_zeros((*x.shape[:-1], len(indices)))
        where = torch.tensor([self._map(i) - x_start for i in indices], device=x.device)
        return x.index_select(-1, where)


BLOCK_RULES = {"Conv1d": Conv1dRule}
