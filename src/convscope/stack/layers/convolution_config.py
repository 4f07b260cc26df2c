"""Convolution and transposed convolution families, planned from a config: the checks of a
Conv1d's and a ConvTranspose1d's config values and their output length rule (the formula text
shapes.json shows, from the families' length rules: convolution.conv1d_length_rule and
transposed.conv_transpose1d_length_rule), and the padding a causal layer replaces. stack.plan
builds the LayerPlan.
"""

from __future__ import annotations

from convscope.errors import ConvscopeError
from convscope.stack.layers.convolution import conv1d_length_rule
from convscope.stack.layers.transposed import conv_transpose1d_length_rule

CONV1D_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def causal_padding(key: str, type_: str, kw: dict, inherited: bool) -> None:
    """A causal layer's padding is its own (d*(k-1) on the left; the right trimmed): set kw's to
    0. The padding a config wrote for the centred layer is replaced where the causal layer has
    the same length for every input (the aligned padding), refused otherwise: a causal stack
    keeps the shapes of its centred version or says why not."""
    why = "model.causal=true makes it causal" if inherited else "causal: true"
    k, s, d = kw["kernel_size"], kw["stride"], kw["dilation"]
    span = d * (k - 1)
    if type_ == "Conv1d":
        if kw["padding_mode"] != "zeros":
            raise ConvscopeError(
                f"{key}.padding_mode: a causal Conv1d ({why}) pads zeros on the left (the "
                f"past before the signal is silence), got {kw['padding_mode']!r}")
        padding = kw["padding"]
        if padding == "same" and s != 1:
            raise ConvscopeError(f"{key}.padding: 'same' needs stride=1, got stride={s}")
        if padding not in ("same", "valid", 0) and (
                not isinstance(padding, int) or isinstance(padding, bool) or 2 * padding != span):
            raise ConvscopeError(
                f"{key}.padding: a causal Conv1d ({why}) pads d*(k-1) = {span} on the left only, "
                f"giving ceil(L_in/stride) samples; padding={padding!r} would give another "
                f"length: leave padding unset (or {span // 2 if span % 2 == 0 else 'same'}, "
                "the centred padding causal replaces)")
        kw["padding"] = 0
        return
    transposed_length(key, kw, 1)  # the centred layer's values must be valid ones
    padding, op = kw["padding"], kw["output_padding"]
    if (padding, op) != (0, 0) and span + 1 - s - 2 * padding + op != 0:
        raise ConvscopeError(
            f"{key}.padding: a causal ConvTranspose1d ({why}) gives L_in*stride samples, the "
            f"full transposed conv trimmed on the right; padding={padding!r} "
            f"output_padding={op!r} would give another length: leave both unset (or set the "
            "aligned ones, which causal replaces)")
    kw["padding"], kw["output_padding"] = 0, 0


def check_positive(key: str, kw: dict, names: tuple[str, ...]) -> None:
    for name in names:
        if not isinstance(kw[name], int) or isinstance(kw[name], bool) or kw[name] < 1:
            raise ConvscopeError(f"{key}.{name} must be an integer >= 1, got {kw[name]!r}")


def check_groups(key: str, type_: str, kw: dict) -> None:
    groups = kw["groups"]
    for name in ("in_channels", "out_channels"):
        if kw[name] % groups:
            raise ConvscopeError(
                f"{key}.groups: {type_} groups={groups} must divide {name}={kw[name]}")


def check_int_padding(key: str, kw: dict) -> int:
    padding = kw["padding"]
    if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
        raise ConvscopeError(f"{key}.padding must be an integer >= 0, got {padding!r}")
    return padding


def transposed_length(key: str, kw: dict, length: int) -> tuple[int, str]:
    padding = check_int_padding(key, kw)
    op, stride, dilation = kw["output_padding"], kw["stride"], kw["dilation"]
    if not isinstance(op, int) or op < 0:
        raise ConvscopeError(f"{key}.output_padding must be an integer >= 0, got {op!r}")
    if not (op < stride or op < dilation):
        raise ConvscopeError(
            f"{key}.output_padding: ConvTranspose1d output_padding={op} must be smaller than "
            f"stride={stride} or dilation={dilation}")
    if kw["padding_mode"] != "zeros":
        raise ConvscopeError(
            f"{key}.padding_mode: ConvTranspose1d supports only 'zeros', got "
            f"{kw['padding_mode']!r}")
    return conv_transpose1d_length_rule(length, kw["kernel_size"], stride, padding, op,
                                        dilation)


def conv_length(key: str, kw: dict, length: int) -> tuple[int, str]:
    if kw["padding_mode"] not in CONV1D_PADDING_MODES:
        raise ConvscopeError(
            f"{key}.padding_mode must be one of {', '.join(CONV1D_PADDING_MODES)}, got "
            f"{kw['padding_mode']!r}")
    if kw["padding"] == "valid":
        kw["padding"] = 0
    if kw["padding"] == "same":
        if kw["stride"] != 1:
            raise ConvscopeError(
                f"{key}.padding: 'same' needs stride=1, got stride={kw['stride']}")
        span = kw["dilation"] * (kw["kernel_size"] - 1)  # torch pads span // 2 left, the rest right
        check_copied_padding(key, kw["padding_mode"], span - span // 2, length)
        return conv1d_length_rule(length, kw["kernel_size"], 1, "same", kw["dilation"])
    padding = check_int_padding(key, kw)
    check_copied_padding(key, kw["padding_mode"], padding, length)
    return conv1d_length_rule(length, kw["kernel_size"], kw["stride"], padding, kw["dilation"])


def check_copied_padding(key: str, mode: str, padding: int, length: int) -> None:
    """reflect and circular padding copy input samples, so torch refuses (at forward time) a
    padding the input is too short to supply: refused here, naming the layer."""
    if mode == "reflect" and padding >= length:
        raise ConvscopeError(
            f"{key}.padding: reflect padding={padding} must be smaller than the input length "
            f"{length}")
    # torch refuses it only at forward time: "Padding value causes wrapping around more than once"
    if mode == "circular" and padding > length:
        raise ConvscopeError(
            f"{key}.padding: circular padding={padding} wraps the input around more than once; "
            f"it must be at most the input length {length}")
