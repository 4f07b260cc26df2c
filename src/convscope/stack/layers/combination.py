"""Combination family: concatenation along channels (torch.cat), stacking branches, sums and
means of branches or over channels, splitting into chunks along channels.

Outputs that gather the same time index from several tensors read the hull of their reaches
(a residual add is the pointwise family's add). Along time, the same ops are not local:
concatenating or reducing over time says so instead of giving a number.
"""

from __future__ import annotations

import torch

from convscope.stack.layers.flow import Flow, Op, axis_index, combined, unresolved
from convscope.stack.layers.pointwise import pointwise

WHOLE_SIGNAL = "depends on the whole signal"


def cat(op: Op) -> Flow:
    tracked = op.tracked()
    first, flow = tracked[0]
    dim = axis_index(int(op.arg(1, "dim", 0)), first.dim())
    if dim == flow.time_axis:
        return unresolved(f"{op.name} joins tensors along time: no periodic rule",
                          flow.time_axis)
    return combined([f for _, f in tracked], flow.time_axis, op.name)


def stack(op: Op) -> Flow:
    tracked = op.tracked()
    first, flow = tracked[0]
    dim = axis_index(int(op.arg(1, "dim", 0)), first.dim() + 1)
    axis = flow.time_axis + (1 if dim <= flow.time_axis else 0)
    return combined([f.on_axis(axis) for _, f in tracked], axis, op.name)


def reduction(op: Op) -> Flow:
    """sum / mean / max ... over `dim` (None: every axis)."""
    tensor, flow = op.first()
    dim = op.arg(1, "dim")
    if isinstance(dim, torch.Tensor):  # torch.max(a, b): elementwise
        return pointwise(op)
    if dim is None or isinstance(dim, (tuple, list)) and not dim:
        return unresolved(f"{op.name} over every axis: {WHOLE_SIGNAL}", 0)
    dims = [axis_index(int(d), tensor.dim()) for d in (dim if isinstance(dim, (tuple, list))
                                                       else [dim])]
    if flow.time_axis in dims:
        return unresolved(f"{op.name} over the time axis: {WHOLE_SIGNAL}", 0)
    keep = bool(op.arg(2, "keepdim", False))
    return flow.on_axis(flow.time_axis - (0 if keep else sum(d < flow.time_axis for d in dims)))


def split(op: Op) -> Flow:
    tensor, flow = op.first()
    dim = axis_index(int(op.arg(2, "dim", 0)), tensor.dim())
    if dim == flow.time_axis:
        return unresolved(f"{op.name} cuts the time axis into pieces: no rule", flow.time_axis)
    return flow


OPS = {"cat": cat, "concat": cat, "concatenate": cat, "stack": stack,
       **{name: reduction for name in ("sum", "mean", "amax", "amin", "prod", "std", "var",
                                       "logsumexp", "norm", "max", "min")},
       **{name: split for name in ("split", "chunk", "tensor_split")}}
