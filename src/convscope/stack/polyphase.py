"""A strided ConvTranspose1d computed as one Conv1d over its polyphase components.

Input sample i adds tap t into contribution j = i*s + d*t. Writing j = q*s + r, output phase r
collects the taps with d*t = r (mod s), each reading input q - m with m = (d*t - r) // s: a plain
correlation of the input with those taps, reversed. All phases that have taps are computed by one
Conv1d with C_out * phases output channels (the same groups), then interleaved.

Why: torch's CPU kernel for small transposed convs (a few channels, the streamed run's 1-s blocks)
is col2im- or oneDNN-based and ran at ~0.5 GMAC/s; the same arithmetic as a Conv1d ran 3-6x
faster (scripts/bench.py, hour case). The result equals F.conv_transpose1d to float rounding
(tests/test_polyphase.py); phases with no tap (a stride above the kernel span) are zeros and are
not computed, so gapped layers never reach oneDNN's transposed kernel (stack/backends.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PolyphaseWeight:
    """The Conv1d weight of a transposed conv's phases, and which phases it computes."""

    weight: torch.Tensor  # (groups * C_out/groups * len(phases), C_in/groups, taps)
    phases: tuple[int, ...]  # output phases r (of the stride) that have at least one tap
    stride: int
    out_channels: int
    groups: int
    span: int  # d*(k-1) + 1: the kernel's extent in contributions
    _biases: dict = field(default_factory=dict, compare=False, repr=False)

    def phase_bias(self, bias: torch.Tensor) -> torch.Tensor:
        """The bias of each (channel, phase) Conv1d output, made once per bias tensor."""
        key = (id(bias), bias._version)
        if key not in self._biases:
            self._biases.clear()
            self._biases[key] = bias.detach().repeat_interleave(len(self.phases))
        return self._biases[key]


def polyphase_weight(weight: torch.Tensor, stride: int, dilation: int = 1,
                     groups: int = 1) -> PolyphaseWeight:
    """`weight`: a ConvTranspose1d's (C_in, C_out/groups, k)."""
    c_in, c_out_g, k = weight.shape
    s, d = stride, dilation
    taps = (d * (k - 1)) // s + 1  # m = (d*t - r) // s runs over 0 .. taps-1
    phases = tuple(sorted({(d * t) % s for t in range(k)}))
    c_in_g = c_in // groups
    # (C_in, C_out/g, k) -> (g, C_out/g, C_in/g, k): a Conv1d's grouped layout
    grouped = weight.reshape(groups, c_in_g, c_out_g, k).transpose(1, 2)
    poly = weight.new_zeros((groups, c_out_g, len(phases), c_in_g, taps))
    for p, r in enumerate(phases):
        for t in range(k):
            if (d * t) % s == r:
                m = (d * t - r) // s
                poly[:, :, p, :, taps - 1 - m] = grouped[..., t]  # correlation: reversed
    return PolyphaseWeight(poly.reshape(groups * c_out_g * len(phases), c_in_g, taps).contiguous(),
                           phases, s, c_out_g * groups, groups, d * (k - 1) + 1)


def conv_transpose1d_polyphase(x: torch.Tensor, pw: PolyphaseWeight,
                               bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """F.conv_transpose1d(x, w, bias, stride, 0, 0, groups, dilation) for x (N, C_in, n):
    (N, C_out, (n-1)*s + d*(k-1) + 1), computed as one Conv1d."""
    n_batch, _, n = x.shape
    taps = pw.weight.shape[-1]
    length = (n - 1) * pw.stride + pw.span
    if n == 0:
        return x.new_zeros((n_batch, pw.out_channels, 0))
    q = n + taps - 1  # phase samples; q*s >= length always (span <= taps*s)
    every_phase = len(pw.phases) == pw.stride
    # every phase: the bias joins the Conv1d (one pass less); gapped: added to the gaps too
    phase_bias = pw.phase_bias(bias) if bias is not None and every_phase else None
    y = F.conv1d(x, pw.weight, phase_bias, 1, taps - 1, 1, pw.groups)
    y = y.view(n_batch, pw.out_channels, len(pw.phases), q)
    if every_phase:  # interleave
        out = y.transpose(2, 3).reshape(n_batch, pw.out_channels, q * pw.stride)
    else:  # gapped: phases without a tap hold only the bias
        out = x.new_zeros((n_batch, pw.out_channels, q, pw.stride))
        out[..., list(pw.phases)] = y.transpose(2, 3)
        out = out.view(n_batch, pw.out_channels, q * pw.stride)
        if bias is not None:
            out += bias.view(1, -1, 1)
    return out[..., :length]
