"""Exact output lengths of Conv1d and ConvTranspose1d, with the arithmetic spelled out.

These mirror the formulas in torch's documentation. They are pure integer functions so the
pipeline can plan (and reject) a whole stack before it builds or runs anything. They take the
values as a config gives them (ints, padding 'same'/'valid') or as a built torch layer stores them
(`conv.kernel_size == (5,)`, `conv.padding == (2,)`), so `formula(layer, length)` can pass a
layer's attributes straight through.
"""

from __future__ import annotations

from typing import Sequence, Union

from convscope.errors import ConvscopeError

IntOrOne = Union[int, Sequence[int]]  # 5 or (5,): torch layers store 1-D arguments as 1-tuples
Padding = Union[int, str, Sequence[int]]  # plus Conv1d's 'same' / 'valid'

POINTWISE_FORMULA = "L_out = L_in (pointwise)"


def single(value: IntOrOne, name: str) -> int:
    """5 and (5,) -> 5: torch's 1-D layers keep their arguments as 1-tuples."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ConvscopeError(f"{name}: a 1-D layer takes one value, got {tuple(value)!r}")
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConvscopeError(f"{name} must be an integer, got {value!r}")
    return value


def conv_padding(padding: Padding) -> Union[int, str]:
    """A Conv1d padding as an int, or 'same'; 'valid' is 0."""
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ConvscopeError(f"padding must be an integer, 'same' or 'valid', got {padding!r}")
        return 0 if padding == "valid" else padding
    return single(padding, "padding")


def conv1d_output_length(length: int, kernel_size: IntOrOne, stride: IntOrOne = 1,
                         padding: Padding = 0, dilation: IntOrOne = 1) -> int:
    """L_out = floor((L_in + 2p - d*(k-1) - 1) / s) + 1; padding='same' keeps L_in (stride 1)."""
    p = conv_padding(padding)
    if p == "same":
        return length
    k, s, d = single(kernel_size, "kernel_size"), single(stride, "stride"), single(dilation,
                                                                                   "dilation")
    return (length + 2 * p - d * (k - 1) - 1) // s + 1


def conv_transpose1d_output_length(length: int, kernel_size: IntOrOne, stride: IntOrOne = 1,
                                   padding: IntOrOne = 0, output_padding: IntOrOne = 0,
                                   dilation: IntOrOne = 1) -> int:
    """L_out = (L_in - 1)*s - 2p + d*(k-1) + output_padding + 1."""
    k, s, p, op, d = _transposed_args(kernel_size, stride, padding, output_padding, dilation)
    return (length - 1) * s - 2 * p + d * (k - 1) + op + 1


def conv1d_formula(length: int, kernel_size: IntOrOne, stride: IntOrOne = 1,
                   padding: Padding = 0, dilation: IntOrOne = 1) -> str:
    """The Conv1d length formula with the numbers filled in, ending in its value."""
    out = conv1d_output_length(length, kernel_size, stride, padding, dilation)
    p = conv_padding(padding)
    if p == "same":
        return f"L_out = L_in = {length} (padding='same')"
    k, s, d = single(kernel_size, "kernel_size"), single(stride, "stride"), single(dilation,
                                                                                   "dilation")
    return f"L_out = floor(({length} + 2*{p} - {d}*({k}-1) - 1) / {s}) + 1 = {out}"


def conv_transpose1d_formula(length: int, kernel_size: IntOrOne, stride: IntOrOne = 1,
                             padding: IntOrOne = 0, output_padding: IntOrOne = 0,
                             dilation: IntOrOne = 1) -> str:
    """The ConvTranspose1d length formula with the numbers filled in, ending in its value."""
    k, s, p, op, d = _transposed_args(kernel_size, stride, padding, output_padding, dilation)
    out = conv_transpose1d_output_length(length, k, s, p, op, d)
    return f"L_out = ({length}-1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1 = {out}"


def upsample_formula(length: int, scale: int) -> str:
    """Upsample by an integer factor (what a config allows; stack.layer_formulas does floats)."""
    return f"L_out = L_in * scale_factor = {length}*{scale} = {length * scale}"


def _transposed_args(kernel_size: IntOrOne, stride: IntOrOne, padding: IntOrOne,
                     output_padding: IntOrOne, dilation: IntOrOne) -> tuple[int, ...]:
    return (single(kernel_size, "kernel_size"), single(stride, "stride"),
            single(padding, "padding"), single(output_padding, "output_padding"),
            single(dilation, "dilation"))
