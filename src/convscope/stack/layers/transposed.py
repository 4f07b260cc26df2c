"""Transposed convolution family: ConvTranspose1d.

Input i adds its kernel copy at outputs i*stride - padding + dilation*m: `conv_transpose_relation`.
output_padding only lengthens the end, so it does not change which inputs an output reads.
"""

from __future__ import annotations

from convscope.stack.layers.convolution import single, time_input
from convscope.stack.layers.flow import Flow, Op
from convscope.stack.layers.relation import Relation


def conv_transpose_relation(kernel: int, stride: int, padding: int, dilation: int) -> Relation:
    """ConvTranspose1d: input i adds its kernel copy at outputs i*stride - padding + dilation*m,
    so output j reads the inputs (j + padding - dilation*m) / stride that are whole numbers."""
    deps = []
    for phase in range(stride):
        taps = (phase + padding - dilation * m for m in range(kernel))
        deps.append(tuple(t // stride for t in taps if t % stride == 0))
    return Relation(stride, 1, tuple(deps))


def conv_transpose1d(op: Op) -> Flow:
    """F.conv_transpose1d(input, weight, bias, stride, padding, output_padding, groups,
    dilation)."""
    flow, refused = time_input(op, "conv_transpose1d")
    if refused:
        return refused
    kernel = op.arg(1, "weight").shape[-1]
    return flow.through(conv_transpose_relation(
        kernel, single(op.arg(3, "stride")), single(op.arg(4, "padding"), 0),
        single(op.arg(7, "dilation"))))


def conv_transpose1d_macs(op: Op) -> int:
    """FlopCounterMode's count / 2: batch x *input* length x weight size (each input sample
    scatters one weighted kernel copy)."""
    x = op.args[0] if op.args else op.kwargs["input"]
    batch = x.shape[0] if x.dim() == 3 else 1
    return batch * x.shape[-1] * op.arg(1, "weight").numel()


MACS = {"conv_transpose1d": conv_transpose1d_macs}
OPS = {"conv_transpose1d": conv_transpose1d}
