"""Pointwise family: activations (LeakyReLU, Tanh, ELU, Snake's sin and pow...), arithmetic
between tensors (x + y, x * alpha), dropout in eval mode.

Output sample j reads sample j of every operand: the flows of the operands that depend on the
input are joined (a residual add's hull), their time axes aligned from the right as
broadcasting aligns them.
"""

from __future__ import annotations

from torch import nn

from convscope.stack.blocks import Snake, SnakeBeta
from convscope.stack.layers.flow import Flow, Op, combined, unresolved
from convscope.stack.layers.relation import IDENTITY

# Elementwise layers: one output sample per input sample, nothing mixed along time.
POINTWISE = tuple(getattr(nn, name) for name in (
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
    "Sigmoid", "Hardsigmoid", "Tanh", "Hardtanh", "Hardswish", "Hardshrink", "Softshrink",
    "Tanhshrink", "Softplus", "Softsign", "LogSigmoid", "Threshold", "Identity", "Dropout",
    "Dropout1d", "AlphaDropout", "FeatureAlphaDropout") if hasattr(nn, name)) + (Snake,)
# (SnakeBeta is a Snake: isinstance covers it.)

NAMES = (
    "add", "sub", "rsub", "mul", "div", "true_divide", "floor_divide", "pow", "neg", "negative",
    "abs", "sin", "cos", "tan", "tanh", "sigmoid", "exp", "exp2", "expm1", "log", "log1p", "sqrt",
    "rsqrt", "reciprocal", "square", "sign", "erf", "atan", "sinc", "clamp", "clip", "clamp_min",
    "clamp_max", "where", "maximum", "minimum", "fmod", "remainder", "relu", "relu6",
    "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "softplus", "softsign",
    "hardtanh", "hardsigmoid", "hardswish", "hardshrink", "softshrink", "tanhshrink",
    "logsigmoid", "threshold", "prelu", "rrelu", "dropout", "dropout1d", "alpha_dropout",
    "feature_alpha_dropout", "lerp", "addcmul", "addcdiv", "masked_fill", "nan_to_num",
    "__add__", "__radd__", "__iadd__", "__sub__", "__rsub__", "__isub__", "__mul__", "__rmul__",
    "__imul__", "__truediv__", "__rtruediv__", "__itruediv__", "__div__", "__rdiv__", "__pow__",
    "__rpow__", "__ipow__", "__neg__", "__abs__", "__floordiv__", "__rfloordiv__", "__mod__",
)


def pointwise(op: Op) -> Flow:
    out = op.out_tensor()
    flows = []
    for tensor, flow in op.tracked():
        axis = out.dim() - (tensor.dim() - flow.time_axis)  # broadcasting aligns from the right
        if flow.finite and tensor.shape[flow.time_axis] != out.shape[axis]:
            return unresolved(f"{op.name} broadcasts {tensor.shape[flow.time_axis]} time "
                              f"samples over {out.shape[axis]}", axis)
        flows.append(flow.on_axis(axis))
    return combined(flows, flows[0].time_axis, op.name)


OPS = {name: pointwise for name in NAMES}


# built modules (stack.receptive's walk): the activations read sample j only
MODULE_RELATIONS = {activation: lambda _module: IDENTITY
                    for activation in (*POINTWISE, Snake, SnakeBeta)}
