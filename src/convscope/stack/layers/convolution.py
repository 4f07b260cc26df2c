"""Conv1d (and pools, which read a window as a conv does): the dependency relation.
"""

from __future__ import annotations

from convscope.stack.layers.relation import Relation


def conv_relation(kernel: int, stride: int, padding: int, dilation: int) -> Relation:
    """Conv1d and pools: output j reads inputs j*stride - padding + dilation*m, m < kernel."""
    return Relation(1, stride, (tuple(-padding + dilation * m for m in range(kernel)),))
