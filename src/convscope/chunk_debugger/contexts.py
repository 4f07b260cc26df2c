"""The context a chunk boundary cuts, for any model, from the analysis's exact index arithmetic.

A boundary at input sample `a` splits the outputs at o = a x rate (when that is whole). Exact
streaming must give the chunk after it every input sample its outputs read before `a` (the left
context) and the chunk before it every sample its outputs read from `a` on (the right context).
For a whole model that is its output's Reach (stack.analysis traces it); for one leaf alone, the
leaf's own Relation (stack.receptive.leaf_relation, the impulse probe for any other leaf).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Optional

from torch import nn

from convscope.stack.layers.relation import Reach, Relation
from convscope.stack.probe import probe_relations
from convscope.stack.receptive import leaf_relation

Context = tuple[int, int]  # (left, right) input samples


def reach_context(reach: Reach, boundaries: list[int]) -> Optional[Context]:
    """The most context any of `boundaries` (input sample indices, each splitting the output at a
    whole sample) needs, by the output's Reach; None when no boundary splits the output whole."""
    found = [_cut_context(reach.at, a * reach.period // reach.shift, a) for a in boundaries
             if (a * reach.period) % reach.shift == 0]
    found = [c for c in found if c is not None]
    if not found:
        return None
    return max(c[0] for c in found), max(c[1] for c in found)


def relation_context(relation: Relation) -> Context:
    """A leaf's own context at every boundary it can be cut at whole (input a with a whole output
    index o = a x out_period / in_period), in its own input samples."""
    left = right = 0
    for phase in range(relation.out_period):
        a, rest = divmod(phase * relation.in_period, relation.out_period)
        if rest:
            continue
        found = _cut_context(relation.bounds_at, phase, a)
        if found is not None:
            left, right = max(left, found[0]), max(right, found[1])
    return left, right


def _cut_context(bounds, o: int, a: int) -> Optional[Context]:
    """Output `o` is the first after the cut at input `a`; o - 1 the last before it. Bounds
    widen monotonically with the output index (every conv, pad and upsampler), so these two
    outputs read furthest across the cut."""
    after, before = bounds(o), bounds(o - 1)
    if after is None or before is None:
        return None
    return max(0, a - after[0]), max(0, before[1] - (a - 1))


def affected_outputs(reach: Reach, boundary: int) -> Optional[Context]:
    """(before, after): how many output samples before and after the cut at input `boundary` read
    input across it (the ones a naive run can get wrong)."""
    if (boundary * reach.period) % reach.shift:
        return None
    o = boundary * reach.period // reach.shift
    limit = 1 << 22  # a finite reach reaches a finite distance; this only stops a wrong one

    def count(step: int, crosses) -> int:
        n = 0
        while n < limit and (span := reach.at(o + step * n + (0 if step > 0 else -1))) is not None \
                and crosses(span):
            n += 1
        return n

    return (count(-1, lambda span: span[1] >= boundary), count(1, lambda span: span[0] < boundary))


def own_relation(module: nn.Module, input_shape: Optional[list[int]]) -> Optional[Relation]:
    """A leaf's own relation: the arithmetic's for the layers it knows, else measured by the
    impulse probe on an input of the shape the leaf got (None when neither resolves it)."""
    relation = leaf_relation(module)
    if relation is not None or not input_shape:
        return relation
    measured = probe_relations(module, input_shape)
    return dict(measured).get("") if measured else None


def leaf_label(module: nn.Module) -> str:
    """A conv leaf as a vocoder engineer names it, ConvTranspose1d k16 s8 p4 (d only when > 1);
    other leaves by class name."""
    if not isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
        return type(module).__name__
    base = "ConvTranspose1d" if isinstance(module, nn.ConvTranspose1d) else "Conv1d"
    padding = module.padding if isinstance(module.padding, str) else module.padding[0]
    parts = [base, f"k{module.kernel_size[0]}", f"s{module.stride[0]}", f"p{padding}"]
    if isinstance(module, nn.ConvTranspose1d) and module.output_padding[0]:
        parts.append(f"op{module.output_padding[0]}")
    if module.dilation[0] != 1:
        parts.append(f"d{module.dilation[0]}")
    return " ".join(parts)


def in_input_samples(samples: int, ratio: Fraction) -> int:
    """`samples` of a tensor running at `ratio` x the model input's rate, in input samples."""
    return math.ceil(samples / ratio) if ratio > 0 else samples
