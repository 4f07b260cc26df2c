"""Normalisation family: time-local (BatchNorm in eval mode: a per-channel scale and shift of
each sample; a norm over channels only) against over the whole signal (GroupNorm,
InstanceNorm, a LayerNorm whose shape covers time, BatchNorm with batch statistics).
"""

from __future__ import annotations

from torch import nn

from convscope.stack.layers.flow import Flow, Op, axis_index, same_flow, unresolved
from convscope.stack.layers.relation import IDENTITY

WHOLE = "normalises over the whole signal"


def batch_norm(op: Op) -> Flow:
    _, flow = op.first()
    if op.arg(5, "training", False):
        return unresolved(f"{WHOLE} (batch_norm with batch statistics)", flow.time_axis)
    return same_flow(op)


def over_time(op: Op) -> Flow:
    _, flow = op.first()
    return unresolved(f"{WHOLE} ({op.name})", flow.time_axis)


def last_axes(op: Op) -> Flow:
    """layer_norm / rms_norm normalise their last len(normalized_shape) axes."""
    tensor, flow = op.first()
    covered = len(tuple(op.arg(1, "normalized_shape")))
    if flow.time_axis >= tensor.dim() - covered:
        return unresolved(f"{WHOLE} ({op.name} over time)", flow.time_axis)
    return same_flow(op)


def along_dim(op: Op) -> Flow:
    """F.normalize, softmax, log_softmax: along one axis; local unless that axis is time."""
    tensor, flow = op.first()
    index, default = (2, 1) if op.name == "normalize" else (1, None)
    dim = op.arg(index, "dim", default)
    if dim is None or axis_index(int(dim), tensor.dim()) == flow.time_axis:
        return unresolved(f"{WHOLE} ({op.name} over time)", flow.time_axis)
    return same_flow(op)


OPS = {"batch_norm": batch_norm, "group_norm": over_time, "instance_norm": over_time,
       "layer_norm": last_axes, "rms_norm": last_axes, "normalize": along_dim,
       "softmax": along_dim, "log_softmax": along_dim}


# built modules (stack.receptive's walk): BatchNorm in eval scales and shifts each sample
MODULE_RELATIONS = {nn.BatchNorm1d: lambda _module: IDENTITY}
