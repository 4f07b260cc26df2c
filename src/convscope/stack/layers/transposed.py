"""Transposed convolution family: ConvTranspose1d.

Input i adds its kernel copy at outputs i*stride - padding + dilation*m: `conv_transpose_relation`.
output_padding only lengthens the end, so it does not change which inputs an output reads.
"""

from __future__ import annotations

from torch import nn

from convscope.stack.blocks import KaiserUpsample
from convscope.stack.causal import CausalConvTranspose1d, causal_formula, causal_output_length
from convscope.stack.layers.convolution import one, single, single_int, time_input
from convscope.stack.layers.flow import Flow, Op
from convscope.stack.layers.relation import Relation
from convscope.stack.lengths import conv_transpose1d_formula, conv_transpose1d_output_length


def conv_transpose1d_length_rule(length: int, kernel_size, stride, padding, output_padding,
                                 dilation, causal: bool = False) -> tuple[int, str]:
    """ConvTranspose1d's length rule, (L_out, the formula text with its numbers): stack.plan
    asks it with a config's checked values, stack.layer_formulas with a built layer's.
    causal: stack.causal's layer, the full transposed conv trimmed on the right to L_in*s."""
    if causal:
        k, s, d = (single_int(value, name) for value, name in (
            (kernel_size, "kernel_size"), (stride, "stride"), (dilation, "dilation")))
        return causal_output_length(True, length, s), causal_formula(True, length, k, s, d)
    args = (length, kernel_size, stride, padding, output_padding, dilation)
    return conv_transpose1d_output_length(*args), conv_transpose1d_formula(*args)


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
# planned layer type -> its length rule (stack.plan and stack.layer_formulas ask it)
LENGTH_RULES = {"ConvTranspose1d": conv_transpose1d_length_rule}
OPS = {"conv_transpose1d": conv_transpose1d}


# --- built modules (stack.receptive's walk over a config stack's tree) --------------------------


def causal_conv_transpose1d_module(module: CausalConvTranspose1d) -> Relation:
    """Padding 0, the right trimmed: output j reads i <= j/s."""
    return conv_transpose_relation(one(module.kernel_size, "k"), one(module.stride, "s"), 0,
                                   one(module.dilation, "d"))


def conv_transpose1d_module(module: nn.ConvTranspose1d) -> Relation:
    return conv_transpose_relation(*(one(getattr(module, name), name) for name in (
        "kernel_size", "stride", "padding", "dilation")))


def kaiser_upsample_module(module: KaiserUpsample) -> Relation:
    """Replicate-pad, transposed conv, trim: padding (k - r) // 2 net."""
    return conv_transpose_relation(module.kernel_size, module.ratio,
                                   module.trim_left - module.pad * module.ratio, 1)


MODULE_RELATIONS = {CausalConvTranspose1d: causal_conv_transpose1d_module,
                    nn.ConvTranspose1d: conv_transpose1d_module,
                    KaiserUpsample: kaiser_upsample_module}
