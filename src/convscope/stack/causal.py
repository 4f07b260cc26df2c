"""Causal convolutions: no output sample depends on an input sample after its own time.

A real-time decoder cannot wait for the future, so each conv must read only the past. The two
classes subclass torch's layers (same constructor, same parameters and state_dict keys, so
weight_norm and a seeded build give the weights of the non-causal layer of the same shape) and
differ only in where the padding goes:

    CausalConv1d            pads d*(k-1) zeros on the left only (torch's own padding stays 0):
                            output j reads inputs j*s - d*(k-1) .. j*s, and
                            L_out = floor((L_in - 1) / s) + 1, the aligned length ceil(L_in / s).
    CausalConvTranspose1d   the full transposed conv (padding 0), cut to its first L_in*s samples:
                            the length of the aligned non-causal layer, trimmed on the *right*
                            (trimming the left, as a centred layer does, is what makes an output
                            depend on later inputs). Output j gets taps from inputs i <= j / s
                            only. When the kernel is shorter than the stride (d*(k-1)+1 < s),
                            the last s - d*(k-1) - 1 samples of the last input's slot get no tap:
                            they hold the bias alone, as torch's output_padding samples do.

Every rule keyed on isinstance(nn.Conv1d / nn.ConvTranspose1d) (lengths, alignment, receptive
field, streaming) checks these classes first: their torch `padding` attribute is 0.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class CausalConv1d(nn.Conv1d):
    """nn.Conv1d with d*(k-1) zeros on the left and none on the right. Takes Conv1d's
    arguments; padding must be 0 and padding_mode 'zeros' (the causal padding replaces them)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding != (0,) or self.padding_mode != "zeros":
            raise ValueError(f"CausalConv1d pads d*(k-1) zeros on the left itself: padding must "
                             f"be 0 and padding_mode 'zeros', got padding={self.padding}, "
                             f"padding_mode={self.padding_mode!r}")

    @property
    def causal_padding(self) -> int:
        """Zeros before the first input sample: the kernel's whole span but its last tap."""
        return self.dilation[0] * (self.kernel_size[0] - 1)

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(input, (self.causal_padding, 0)))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", causal=True (left padding {self.causal_padding})"


class CausalConvTranspose1d(nn.ConvTranspose1d):
    """nn.ConvTranspose1d whose output is the first L_in*s samples of the padding-0 transposed
    conv. Takes ConvTranspose1d's arguments; padding and output_padding must be 0."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding != (0,) or self.output_padding != (0,):
            raise ValueError(f"CausalConvTranspose1d trims the right itself: padding and "
                             f"output_padding must be 0, got padding={self.padding}, "
                             f"output_padding={self.output_padding}")

    @property
    def right_trim(self) -> int:
        """Samples of the full transposed conv past L_in*s, cut off (negative: bias-only tail)."""
        return self.dilation[0] * (self.kernel_size[0] - 1) + 1 - self.stride[0]

    def forward(self, input: torch.Tensor, output_size: Optional[list[int]] = None
                ) -> torch.Tensor:
        if output_size is not None:
            raise ValueError("CausalConvTranspose1d's output length is L_in * stride; "
                             "output_size is not taken")
        # a kernel shorter than the stride leaves the tail untouched by any tap: torch's
        # output_padding extends the output there (bias only); it is < stride, as torch requires
        tail = max(0, -self.right_trim)
        y = F.conv_transpose1d(input, self.weight, self.bias, self.stride, 0, tail, self.groups,
                               self.dilation)
        return y[..., :input.shape[-1] * self.stride[0]]

    def extra_repr(self) -> str:
        return super().extra_repr() + ", causal=True (trimmed on the right to L_in*stride)"


def causal_output_length(transposed: bool, length: int, stride: int) -> int:
    """L_out of a causal layer: ceil(L_in / s) for Conv1d, L_in * s for ConvTranspose1d."""
    return length * stride if transposed else (length - 1) // stride + 1


def causal_formula(transposed: bool, length: int, kernel_size: int, stride: int,
                   dilation: int) -> str:
    """The causal layer's length formula with its numbers, ending in its value."""
    out = causal_output_length(transposed, length, stride)
    if transposed:
        full = (length - 1) * stride + dilation * (kernel_size - 1) + 1
        return (f"L_out = L_in*s = {length}*{stride} = {out} (causal: the first {out} of the "
                f"full ({length}-1)*{stride} + {dilation}*({kernel_size}-1) + 1 = {full}, "
                "trimmed on the right)")
    left = dilation * (kernel_size - 1)
    return (f"L_out = floor(({length} + {left} - {dilation}*({kernel_size}-1) - 1) / {stride}) "
            f"+ 1 = {out} (causal: {left} zeros on the left only)")
