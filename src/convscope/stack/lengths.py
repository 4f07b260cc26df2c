"""Exact output lengths of Conv1d and ConvTranspose1d, with the arithmetic spelled out.

These mirror the formulas in torch's documentation. They are pure integer functions so the
pipeline can plan (and reject) a whole stack before it builds or runs anything.
"""

from __future__ import annotations


def conv1d_output_length(length: int, kernel_size: int, stride: int = 1, padding: int = 0,
                         dilation: int = 1) -> int:
    """L_out = floor((L_in + 2p - d*(k-1) - 1) / s) + 1."""
    return (length + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def conv_transpose1d_output_length(length: int, kernel_size: int, stride: int = 1,
                                   padding: int = 0, output_padding: int = 0,
                                   dilation: int = 1) -> int:
    """L_out = (L_in - 1)*s - 2p + d*(k-1) + output_padding + 1."""
    return (length - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


def conv1d_formula(length: int, kernel_size: int, stride: int = 1, padding: int = 0,
                   dilation: int = 1) -> str:
    """The Conv1d length formula with the numbers filled in, ending in its value."""
    out = conv1d_output_length(length, kernel_size, stride, padding, dilation)
    return (f"L_out = floor(({length} + 2*{padding} - {dilation}*({kernel_size}-1) - 1) / {stride})"
            f" + 1 = {out}")


def conv_transpose1d_formula(length: int, kernel_size: int, stride: int = 1, padding: int = 0,
                             output_padding: int = 0, dilation: int = 1) -> str:
    """The ConvTranspose1d length formula with the numbers filled in, ending in its value."""
    out = conv_transpose1d_output_length(length, kernel_size, stride, padding, output_padding,
                                         dilation)
    return (f"L_out = ({length}-1)*{stride} - 2*{padding} + {dilation}*({kernel_size}-1)"
            f" + {output_padding} + 1 = {out}")
