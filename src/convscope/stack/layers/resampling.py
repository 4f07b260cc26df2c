"""Upsample / F.interpolate: the dependency relation.
"""

from __future__ import annotations

import math
from fractions import Fraction

from convscope.stack.layers.relation import Relation


def upsample_relation(scale: int, mode: str) -> Relation:
    """nn.Upsample by an integer scale: nearest copies input j // scale; linear (align_corners
    off) blends the inputs either side of (j + 1/2)/scale - 1/2, the right one with weight 0 when
    that position is a whole input index."""
    deps = []
    for phase in range(scale):
        if mode == "linear":
            source = Fraction(2 * phase + 1, 2 * scale) - Fraction(1, 2)
            left = math.floor(source)
            deps.append((left,) if source == left else (left, left + 1))
        else:
            deps.append((0,))
    return Relation(scale, 1, tuple(deps))
