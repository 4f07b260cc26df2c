"""ConvTranspose1d: the dependency relation.
"""

from __future__ import annotations

from convscope.stack.layers.relation import Relation


def conv_transpose_relation(kernel: int, stride: int, padding: int, dilation: int) -> Relation:
    """ConvTranspose1d: input i adds its kernel copy at outputs i*stride - padding + dilation*m,
    so output j reads the inputs (j + padding - dilation*m) / stride that are whole numbers."""
    deps = []
    for phase in range(stride):
        taps = (phase + padding - dilation * m for m in range(kernel))
        deps.append(tuple(t // stride for t in taps if t % stride == 0))
    return Relation(stride, 1, tuple(deps))
