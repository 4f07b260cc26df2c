"""Convolution family: Conv1d and the pools (which read a window as a conv does).

Output j reads inputs j*stride - padding + dilation*m, m < kernel: `conv_relation`. The rules
read F.conv1d's and the pools' own arguments, so any module calling them (weight-normed convs,
EnCodec's SConv1d, a user's class) is covered by the same arithmetic.
"""

from __future__ import annotations

from typing import Optional

from torch import nn

from convscope.errors import ConvscopeError
from convscope.stack.blocks import KaiserDownsample
from convscope.stack.causal import CausalConv1d, causal_formula, causal_output_length
from convscope.stack.lengths import Padding, conv1d_formula, conv1d_output_length
from convscope.stack.lengths import single as single_int

from convscope.stack.layers.flow import Flow, Op, unresolved
from convscope.stack.layers.relation import Relation

POOLS = (nn.MaxPool1d, nn.AvgPool1d, nn.LPPool1d)


def conv_relation(kernel: int, stride: int, padding: int, dilation: int) -> Relation:
    """Conv1d and pools: output j reads inputs j*stride - padding + dilation*m, m < kernel."""
    return Relation(1, stride, (tuple(-padding + dilation * m for m in range(kernel)),))


def conv1d_length_rule(length: int, kernel_size, stride, padding: Padding, dilation,
                       causal: bool = False) -> tuple[int, str]:
    """Conv1d's length rule, (L_out, the formula text with its numbers): stack.plan asks it with
    a config's checked values, stack.layer_formulas with a built layer's (1-tuples or ints,
    padding 'same'/'valid' too). causal: stack.causal's layer, d*(k-1) zeros on the left."""
    if causal:
        k, s, d = (single_int(value, name) for value, name in (
            (kernel_size, "kernel_size"), (stride, "stride"), (dilation, "dilation")))
        return causal_output_length(False, length, s), causal_formula(False, length, k, s, d)
    args = (length, kernel_size, stride, padding, dilation)
    return conv1d_output_length(*args), conv1d_formula(*args)


def single(value, default: int = 1) -> int:
    """A 1-D op's int argument, which torch also takes as a 1-tuple (or None: the default)."""
    if isinstance(value, (tuple, list)):
        value = value[0] if value else None
    return default if value is None else int(value)


def time_input(op: Op, what: str) -> tuple[Optional[Flow], Optional[Flow]]:
    """(the input's flow, None) when the op's input runs along its last axis and its other
    tensor arguments (weights) read no input sample; else (None, the reason as a Flow)."""
    tracked = op.tracked()
    tensor, flow = tracked[0]
    last = tensor.dim() - 1
    first_argument = op.args[0] if op.args else op.kwargs.get("input")
    if tensor is not first_argument or len(tracked) > 1:
        return None, unresolved(f"{what} with a weight computed from the input", last)
    if flow.finite and flow.time_axis != last:
        return None, unresolved(f"{what} over an axis that is not the time axis", last)
    return flow, None


def conv1d(op: Op) -> Flow:
    flow, refused = time_input(op, "conv1d")
    if refused:
        return refused
    weight = op.arg(1, "weight")
    kernel, stride, dilation = (weight.shape[-1], single(op.arg(3, "stride")),
                                single(op.arg(5, "dilation")))
    padding = op.arg(4, "padding", 0)
    if isinstance(padding, str):  # torch's "same" puts the odd sample of d*(k-1) on the right
        padding = dilation * (kernel - 1) // 2 if padding == "same" else 0
    return flow.through(conv_relation(kernel, stride, single(padding, 0), dilation))


def pool1d(op: Op) -> Flow:
    flow, refused = time_input(op, op.name)
    if refused:
        return refused
    kernel = single(op.arg(1, "kernel_size"))
    stride = op.arg(2, "stride")
    stride = kernel if stride is None or stride == () or stride == [] else single(stride)
    dilation = single(op.arg(4, "dilation")) if "max" in op.name else 1
    return flow.through(conv_relation(kernel, stride, single(op.arg(3, "padding"), 0), dilation))


def conv1d_macs(op: Op) -> int:
    """FlopCounterMode's count / 2: batch x output length x weight size."""
    out = op.out_tensor()
    batch = out.shape[0] if out.dim() == 3 else 1
    return batch * out.shape[-1] * op.arg(1, "weight").numel()


MACS = {"conv1d": conv1d_macs}
# planned layer type -> its length rule (stack.plan and stack.layer_formulas ask it)
LENGTH_RULES = {"Conv1d": conv1d_length_rule}


# a built pool's length rule (stack.layer_formulas asks it; no config plans a pool)
def pool_length_rule(layer: nn.Module, length: int) -> tuple[int, str]:
    """torch's pooling_output_shape: floor, or ceil minus a last window starting in the padding."""
    k = single_int(layer.kernel_size, "kernel_size")
    s = single_int(layer.stride if layer.stride is not None else layer.kernel_size, "stride")
    p = single_int(getattr(layer, "padding", 0), "padding")  # LPPool1d pads nothing
    d = single_int(getattr(layer, "dilation", 1), "dilation")  # only MaxPool1d dilates
    if not 0 <= p <= k // 2:  # torch's check, for MaxPool1d too: the kernel, not its dilated span
        raise ConvscopeError(f"{type(layer).__name__}: padding={p} must be between 0 and half "
                             f"the kernel size ({k}//2 = {k // 2})")
    span = f"({length} + 2*{p} - {d}*({k}-1) - 1) / {s}"
    numerator = length + 2 * p - d * (k - 1) - 1
    if not layer.ceil_mode:
        out = numerator // s + 1
        return out, f"L_out = floor({span}) + 1 = {out}"
    out = -(-numerator // s) + 1
    if (out - 1) * s >= length + p:
        return out - 1, (f"L_out = ceil({span}) + 1 - 1 = {out - 1} (ceil_mode: the last window "
                         "would start in the right padding)")
    return out, f"L_out = ceil({span}) + 1 = {out}"


OPS = {"conv1d": conv1d, "max_pool1d": pool1d, "_max_pool1d": pool1d,
       "max_pool1d_with_indices": pool1d, "avg_pool1d": pool1d}


# --- built modules (stack.receptive's walk over a config stack's tree) --------------------------


def one(value, name: str) -> int:
    """A 1-D module's int attribute, which torch stores as a 1-tuple; ValueError otherwise."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(name)
        value = value[0]
    return value


def conv1d_padding(module: nn.Conv1d) -> int:
    """The left padding of a built Conv1d ('same' puts the odd sample on the right)."""
    kernel, dilation = one(module.kernel_size, "k"), one(module.dilation, "d")
    if module.padding == "same":
        return dilation * (kernel - 1) // 2
    if module.padding == "valid":
        return 0
    return one(module.padding, "padding")


def causal_conv1d_module(module: CausalConv1d) -> Relation:
    """d*(k-1) zeros on the left: output j reads j*s - d*(k-1) .. j*s."""
    return conv_relation(one(module.kernel_size, "k"), one(module.stride, "s"),
                         module.causal_padding, one(module.dilation, "d"))


def conv1d_module(module: nn.Conv1d) -> Relation:
    return conv_relation(one(module.kernel_size, "k"), one(module.stride, "s"),
                         conv1d_padding(module), one(module.dilation, "d"))


def kaiser_downsample_module(module: KaiserDownsample) -> Relation:
    return conv_relation(module.kernel_size, module.ratio, module.pad_left, 1)


def pool_module(module: nn.Module) -> Relation:
    kernel = one(module.kernel_size, "k")
    stride = one(module.stride, "s") if module.stride is not None else kernel
    return conv_relation(kernel, stride, one(getattr(module, "padding", 0), "p"),
                         one(getattr(module, "dilation", 1), "d"))


# module class -> its relation, for a module whose forward is that class's own
MODULE_RELATIONS = {CausalConv1d: causal_conv1d_module, nn.Conv1d: conv1d_module,
                    KaiserDownsample: kaiser_downsample_module,
                    **{pool: pool_module for pool in POOLS}}
