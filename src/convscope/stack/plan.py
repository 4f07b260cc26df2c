"""Layer specs → a checked plan (pure arithmetic), before anything is built (stack.build).

`plan_stack` walks the specs with the input shape and computes every layer's output shape and length
formula before anything is built, so a bad stack is rejected with the layer's config key
(`model.layers.1`) instead of torch's nameless forward-time error.
"""

from __future__ import annotations

from dataclasses import dataclass

from convscope.config.schema import LayerConfig
from convscope.errors import ConvscopeError
from convscope.stack.inits import DEFAULT_INIT, SINC_PARAMS, InitSpec, check_init, init_spec
from convscope.stack.lengths import (
    POINTWISE_FORMULA,
    conv1d_formula,
    conv1d_output_length,
    conv_transpose1d_formula,
    conv_transpose1d_output_length,
    upsample_formula,
)

CONV_TYPES = ("Conv1d", "ConvTranspose1d")
# Pointwise activations, with the constructor keys each accepts.
ACTIVATIONS: dict[str, tuple[str, ...]] = {
    "ReLU": (), "LeakyReLU": ("negative_slope",), "Tanh": (), "Sigmoid": (), "GELU": (),
    "SiLU": (), "ELU": ("alpha",),
}
CONV_KEYS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
             "groups", "bias", "padding_mode", "init") + SINC_PARAMS
UPSAMPLE_MODES = ("nearest", "linear", "nearest-exact")
LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "Conv1d": CONV_KEYS,
    "ConvTranspose1d": CONV_KEYS + ("output_padding",),
    "Upsample": ("scale_factor", "mode"),
    **ACTIVATIONS,
}
CONV1D_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


@dataclass(frozen=True)
class LayerPlan:
    """What one layer will do, known before it is built."""

    index: int
    type: str
    kwargs: dict  # constructor arguments, defaults filled in
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    formula: str
    stride_ratio: tuple[int, int]  # (up, down): how this layer scales the sample rate
    init: InitSpec = DEFAULT_INIT  # conv weights: torch's seeded default or an interpolator

    @property
    def key(self) -> str:
        return f"model.layers.{self.index}"

    @property
    def left_padding(self) -> int:
        """Samples of padding before the first input sample. Conv1d 'same' puts d*(k-1)//2 on the
        left (torch adds the odd sample on the right); 'valid' is 0 by the time it is planned."""
        padding = self.kwargs.get("padding", 0)
        if padding == "same":
            return self.kwargs["dilation"] * (self.kwargs["kernel_size"] - 1) // 2
        return int(padding)


def allowed_types() -> tuple[str, ...]:
    return tuple(LAYER_KEYS)


def plan_stack(specs: list[LayerConfig], input_shape: tuple[int, int, int]) -> list[LayerPlan]:
    """Check every layer against the shape flowing into it; return the per-layer plan."""
    plans: list[LayerPlan] = []
    shape = tuple(input_shape)
    for index, spec in enumerate(specs):
        plan = _plan_layer(index, spec, shape)
        plans.append(plan)
        shape = plan.output_shape
    return plans


def _plan_layer(index: int, spec: LayerConfig, shape: tuple[int, int, int]) -> LayerPlan:
    key = f"model.layers.{index}"
    if spec.type not in LAYER_KEYS:
        raise ConvscopeError(
            f"{key}.type: {spec.type!r} is not an allowed layer type; allowed: "
            f"{', '.join(allowed_types())}")
    _reject_foreign_keys(key, spec)
    if spec.type in ACTIVATIONS:
        kwargs = {name: getattr(spec, name) for name in ACTIVATIONS[spec.type]
                  if getattr(spec, name) is not None}
        return LayerPlan(index, spec.type, kwargs, shape, shape, POINTWISE_FORMULA, (1, 1))
    if spec.type == "Upsample":
        return _plan_upsample(index, spec, shape)
    return _plan_conv(index, spec, shape)


def _plan_upsample(index: int, spec: LayerConfig, shape: tuple[int, int, int]) -> LayerPlan:
    key = f"model.layers.{index}"
    scale, mode = spec.scale_factor, _default(spec.mode, "nearest")
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise ConvscopeError(f"{key}.scale_factor: Upsample needs an integer >= 1, got {scale!r}")
    if mode not in UPSAMPLE_MODES:
        raise ConvscopeError(f"{key}.mode must be one of {', '.join(UPSAMPLE_MODES)}, got {mode!r}")
    batch, channels, length = shape
    return LayerPlan(index, spec.type, dict(scale_factor=scale, mode=mode), shape,
                     (batch, channels, length * scale), upsample_formula(length, scale), (scale, 1))


def _reject_foreign_keys(key: str, spec: LayerConfig) -> None:
    accepted = set(LAYER_KEYS[spec.type]) | {"type"}
    for name, value in vars(spec).items():
        if value is not None and name not in accepted:
            raise ConvscopeError(f"{key}.{name}: {spec.type} takes no {name} (got {value!r})")


def _plan_conv(index: int, spec: LayerConfig, shape: tuple[int, int, int]) -> LayerPlan:
    key = f"model.layers.{index}"
    batch, channels, length = shape
    transposed = spec.type == "ConvTranspose1d"
    in_channels = channels if spec.in_channels is None else spec.in_channels
    if in_channels != channels:
        raise ConvscopeError(
            f"{key}.in_channels: {spec.type} expects {in_channels} channels but the previous "
            f"{'layer' if index else 'input'} gives {channels}")
    if spec.out_channels is None or spec.kernel_size is None:
        raise ConvscopeError(f"{key}: {spec.type} needs out_channels and kernel_size")
    kw = dict(in_channels=in_channels, out_channels=spec.out_channels,
              kernel_size=spec.kernel_size, stride=_default(spec.stride, 1),
              padding=_default(spec.padding, 0), dilation=_default(spec.dilation, 1),
              groups=_default(spec.groups, 1), bias=_default(spec.bias, True),
              padding_mode=_default(spec.padding_mode, "zeros"))
    if transposed:
        kw["output_padding"] = _default(spec.output_padding, 0)
    _check_positive(key, kw, ("out_channels", "kernel_size", "stride", "dilation", "groups"))
    _check_groups(key, spec.type, kw)
    if transposed:
        length_out, formula = _transposed_length(key, kw, length)
    else:
        length_out, formula = _conv_length(key, kw, length)
    if length_out < 1:
        raise ConvscopeError(
            f"{key}: {spec.type} output length would be {length_out} (< 1): {formula}")
    ratio = (kw["stride"], 1) if transposed else (1, kw["stride"])
    plan = LayerPlan(index, spec.type, kw, shape, (batch, kw["out_channels"], length_out),
                     formula, ratio,
                     init_spec(key, spec.init, spec.sinc_window, spec.sinc_beta, spec.sinc_cutoff))
    check_init(key, plan.init, spec.type, kw, plan.left_padding)
    return plan


def _default(value, default):
    return default if value is None else value


def _check_positive(key: str, kw: dict, names: tuple[str, ...]) -> None:
    for name in names:
        if not isinstance(kw[name], int) or isinstance(kw[name], bool) or kw[name] < 1:
            raise ConvscopeError(f"{key}.{name} must be an integer >= 1, got {kw[name]!r}")


def _check_groups(key: str, type_: str, kw: dict) -> None:
    groups = kw["groups"]
    for name in ("in_channels", "out_channels"):
        if kw[name] % groups:
            raise ConvscopeError(
                f"{key}.groups: {type_} groups={groups} must divide {name}={kw[name]}")


def _check_int_padding(key: str, kw: dict) -> int:
    padding = kw["padding"]
    if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
        raise ConvscopeError(f"{key}.padding must be an integer >= 0, got {padding!r}")
    return padding


def _transposed_length(key: str, kw: dict, length: int) -> tuple[int, str]:
    padding = _check_int_padding(key, kw)
    op, stride, dilation = kw["output_padding"], kw["stride"], kw["dilation"]
    if not isinstance(op, int) or op < 0:
        raise ConvscopeError(f"{key}.output_padding must be an integer >= 0, got {op!r}")
    if not (op < stride or op < dilation):
        raise ConvscopeError(
            f"{key}.output_padding: ConvTranspose1d output_padding={op} must be smaller than "
            f"stride={stride} or dilation={dilation}")
    if kw["padding_mode"] != "zeros":
        raise ConvscopeError(
            f"{key}.padding_mode: ConvTranspose1d supports only 'zeros', got {kw['padding_mode']!r}")
    args = (length, kw["kernel_size"], stride, padding, op, dilation)
    return conv_transpose1d_output_length(*args), conv_transpose1d_formula(*args)


def _conv_length(key: str, kw: dict, length: int) -> tuple[int, str]:
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
        return length, conv1d_formula(length, kw["kernel_size"], 1, "same", kw["dilation"])
    padding = _check_int_padding(key, kw)
    if kw["padding_mode"] == "reflect" and padding >= length:
        raise ConvscopeError(
            f"{key}.padding: reflect padding={padding} must be smaller than the input length "
            f"{length}")
    args = (length, kw["kernel_size"], kw["stride"], padding, kw["dilation"])
    return conv1d_output_length(*args), conv1d_formula(*args)
