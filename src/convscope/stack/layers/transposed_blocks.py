"""Transposed convolution family, streamed: ConvTranspose1d's block rule (any stride, padding,
dilation, output_padding, groups), computed through the polyphase form (stack.polyphase).
"""

from __future__ import annotations

from functools import cached_property

import torch

from convscope.stack.layers.block_rule import LayerRule, Range, reads
from convscope.stack.layers.relation import Relation
from convscope.stack.layers.transposed import conv_transpose_relation
from convscope.stack.polyphase import PolyphaseWeight, conv_transpose1d_polyphase, polyphase_weight


class ConvTranspose1dRule(LayerRule):
    """Input i adds weight tap t into output j = i*s - p + d*t (output_padding adds length only):
    conv_transpose_relation, which needed_input reads its span from."""

    @cached_property
    def relation(self) -> Relation:
        kw = self.plan.kwargs
        return conv_transpose_relation(kw["kernel_size"], kw["stride"], kw["padding"],
                                       kw["dilation"])

    def needed_input(self, out: Range) -> Range:
        if out[1] <= out[0]:
            return (0, 0)
        first, stop = reads(self.relation, out)
        start, stop = max(first, 0), min(stop, self.input_length)
        return (start, max(start, stop))

    @cached_property
    def polyphase(self) -> PolyphaseWeight:
        """The weight as a Conv1d over phases: rules are built per run, the weights fixed."""
        kw = self.plan.kwargs
        return polyphase_weight(self.module.weight.detach(), kw["stride"], kw["dilation"],
                                kw["groups"])

    def forward_range(self, x: torch.Tensor, x_start: int, out: Range) -> torch.Tensor:
        kw, m = self.plan.kwargs, self.module
        a, b = out
        start, stop = self.needed_input(out)
        if stop > start:
            first_j = start * kw["stride"] - kw["padding"]  # output index of contributions[0]
            inside = x[..., start - x_start: stop - x_start]
            n_out = (stop - start - 1) * kw["stride"] + self.polyphase.span
            lo, hi = max(a, first_j), min(b, first_j + n_out)
            if (lo, hi) == (a, b):  # inside the signal: no zero-filled edge to assemble
                y = conv_transpose1d_polyphase(inside, self.polyphase, m.bias)
                return y[..., a - first_j: b - first_j]
            contributions = conv_transpose1d_polyphase(inside, self.polyphase)
        y = x.new_zeros((x.shape[0], kw["out_channels"], max(b - a, 0)))
        if stop > start and hi > lo:
            y[..., lo - a: hi - a] = contributions[..., lo - first_j: hi - first_j]
        if m.bias is not None:
            y += m.bias.view(1, -1, 1)
        return y


BLOCK_RULES = {"ConvTranspose1d": ConvTranspose1dRule}
