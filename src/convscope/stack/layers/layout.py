"""Layout family: ops that move or relabel axes without mixing time samples (reshape, view,
permute, transpose, unsqueeze, contiguous, casts), and ops that make a tensor like another
(zeros_like) and so read no sample at all.

A reshape keeps the time axis when the output has an axis of the same length with the same
number of elements before and after it; otherwise it mixes time with another axis and says so.
"""

from __future__ import annotations

import math
from typing import Optional

from convscope.stack.layers.flow import Flow, Op, axis_index, no_dependence, same_flow, unresolved


def reshape(op: Op) -> Flow:
    tensor, flow = op.first()
    out = op.out_tensor()
    shape, axis = list(tensor.shape), flow.time_axis
    before, after = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    for candidate in range(out.dim()):
        if (out.shape[candidate] == shape[axis] and math.prod(out.shape[:candidate]) == before
                and math.prod(out.shape[candidate + 1:]) == after):
            return flow.on_axis(candidate)
    return unresolved(f"{op.name} from {shape} to {list(out.shape)} mixes the time axis with "
                      "another", min(axis, out.dim() - 1))


def permute(op: Op) -> Flow:
    tensor, flow = op.first()
    dims = op.args[1:] if len(op.args) > 2 or isinstance(op.args[1], int) else op.args[1]
    dims = [axis_index(int(d), tensor.dim()) for d in dims]
    return flow.on_axis(dims.index(flow.time_axis))


def transpose(op: Op) -> Flow:
    tensor, flow = op.first()
    if len(op.args) < 3 and op.name in ("t", "T"):
        first, second = 0, 1
    else:
        first, second = (axis_index(int(op.arg(i, name)), tensor.dim())
                         for i, name in ((1, "dim0"), (2, "dim1")))
    axis = flow.time_axis
    return flow.on_axis(second if axis == first else first if axis == second else axis)


def aligned_right(op: Op) -> Optional[Flow]:
    """expand / expand_as: new axes come first; time must keep its length."""
    tensor, flow = op.first()
    out = op.out_tensor()
    axis = out.dim() - (tensor.dim() - flow.time_axis)
    if out.shape[axis] != tensor.shape[flow.time_axis]:
        return unresolved(f"{op.name} repeats time samples", axis)
    return flow.on_axis(axis)


SAME = ("contiguous", "clone", "detach", "to", "float", "double", "half", "bfloat16", "type",
        "type_as", "cpu", "cuda", "requires_grad", "alias")
RESHAPES = ("reshape", "view", "view_as", "reshape_as", "flatten", "unflatten", "unsqueeze",
            "squeeze")
LIKE = ("zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
        "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor")

OPS = {**{name: same_flow for name in SAME}, **{name: reshape for name in RESHAPES},
       **{name: no_dependence for name in LIKE},
       "permute": permute, "transpose": transpose, "swapaxes": transpose, "swapdims": transpose,
       "expand": aligned_right, "expand_as": aligned_right}
