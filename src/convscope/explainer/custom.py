"""The user's own numbers (input=, weight=, bias=) as a one-layer Example, shapes checked.

One rule for conv=transpose and conv=conv1d alike (no batch axis: the walkthrough shows one item):

    input   [1,2,3]                (L)         one channel
            [[1,2],[3,4]]          (C_in, L)   one list of samples per input channel
    weight  [1,0,-1]               (k)         one input channel -> one output channel
            [[1,0],[0,1]]          (C_in, k)   one row of taps per input channel -> one output
            [[[..],..],..]         torch's own layout: ConvTranspose1d (C_in, C_out, k),
                                   Conv1d (C_out, C_in, k)
    bias    0.5 or [b0, b1, ...]   one number per output channel (a bare number: C_out = 1)

Every problem is a ConvscopeError naming the key and, for shapes, what was expected and given,
so that the script's one `error:` line (and the API's exception) says how to fix it. Values come
in as (nested) lists: Hydra's parsed overrides, or what convscope.explain made of arrays/tensors.
"""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np

from convscope.errors import ConvscopeError
from convscope.explainer.config import ExplainConfig
from convscope.explainer.examples import CONV1D, TRANSPOSE1D, Example, Layer, given
from convscope.text import fmt_shape

CONV_KINDS = {"transpose": TRANSPOSE1D, "conv1d": CONV1D}
TORCH_LAYOUT = {TRANSPOSE1D: ("ConvTranspose1d", "(C_in, C_out, k)"),
                CONV1D: ("Conv1d", "(C_out, C_in, k)")}
EXAMPLES = {"input": "input=[1,2,3]", "weight": "weight=[1,0,-1]"}
MAX_SHOWN = 60  # characters of a value quoted in an error message
MAX_SAMPLES = 4096  # input, kernel span or output samples one picture draws
MAX_ANIMATED = 3000  # output cells drawn over all frames (3 frames x 502 cells: 10 s)
PICTURE_ROWS = 12  # picture.MAX_SAMPLES: the input samples scatter.png draws (a sibling module)
MAX_PICTURE_CELLS = 1600  # ~8 s of drawing on these machines (3 x 502 cells measured 7.5 s)


def custom_example(request: ExplainConfig) -> Example:
    """The user's numbers as a one-layer example with no expected values."""
    if request.conv not in CONV_KINDS:
        raise ConvscopeError(f"conv must be one of {', '.join(CONV_KINDS)}, "
                             f"got conv={request.conv}")
    kind = CONV_KINDS[request.conv]
    if not request.input and isinstance(request.input, (list, tuple)):
        raise ConvscopeError("input is empty: give at least one sample, e.g. input=[1,2,3]")
    if request.weight is None or (isinstance(request.weight, (list, tuple))
                                  and not request.weight):
        raise ConvscopeError(f"weight is {'missing' if request.weight is None else 'empty'}: "
                             "give the kernel taps too, e.g. weight=[1,0,-1]")
    x = input_array(request.input)
    weight = weight_array(request.weight, kind, x.shape[1])
    bias = bias_array(request.bias, kind, weight.shape)
    if kind == CONV1D and request.output_padding:
        raise ConvscopeError(f"output_padding={request.output_padding} applies to "
                             "conv=transpose only; Conv1d has no output_padding")
    check_size(request, kind, x.shape[-1], weight.shape[-1])
    layer = Layer(kind, given(weight, weight.shape),
                  None if bias is None else given(bias, bias.shape), stride=request.stride,
                  padding=request.padding, dilation=request.dilation,
                  output_padding=request.output_padding if kind == TRANSPOSE1D else 0)
    return Example("custom", "custom input", "your input through " + layer.describe(),
                   given(x, x.shape), (layer,))


def check_size(request: ExplainConfig, kind: str, length: int, taps: int) -> None:
    """The explainer draws every sample and every tap, and animates one frame per input sample:
    past MAX_SAMPLES (or MAX_ANIMATED drawn samples in all) a picture is unreadable and the
    arithmetic only costs memory (stride=1000000000 asked for 15 GB). Checked before any array
    of the output's size exists; the stride etc. are already known to be >= their minimums."""
    span = request.dilation * (taps - 1) + 1
    if kind == TRANSPOSE1D:
        out = (length - 1) * request.stride - 2 * request.padding + span + request.output_padding
    else:
        out = (length + 2 * request.padding - span) // request.stride + 1
    for key, value in (("input", length), ("weight", span), ("stride", out)):
        if value > MAX_SAMPLES:
            what = {"input": f"{length} samples", "weight": f"a kernel spanning {span} samples "
                    f"({taps} taps, dilation {request.dilation})",
                    "stride": f"an output of {out} samples"}[key]
            raise ConvscopeError(
                f"{key}: the explainer draws every sample, and this gives {what}, more than "
                f"{MAX_SAMPLES}; explain a shorter example (scripts/run.py runs real lengths)")
    drawn = min(length, PICTURE_ROWS) * max(out, 1)  # picture.py: a row per input sample shown
    if request.picture and drawn > MAX_PICTURE_CELLS:
        raise ConvscopeError(
            f"picture: scatter.png would draw {min(length, PICTURE_ROWS)} rows of {out} output "
            f"cells ({drawn}, more than {MAX_PICTURE_CELLS}: minutes of drawing, unreadable); "
            "set picture=false for the numbers alone, or use a shorter kernel or stride")
    if request.animate and length * max(out, 1) > MAX_ANIMATED:
        raise ConvscopeError(
            f"animate: {length} frames (one per input sample) of a {out}-sample output draw "
            f"{length * out} samples, more than {MAX_ANIMATED}; shorten the input or set "
            "animate=false")


def input_array(value: Any) -> np.ndarray:
    """(L) or (C_in, L) as (1, C_in, L)."""
    array = numbers("input", value)
    if array.ndim not in (1, 2):
        raise ConvscopeError(
            f"input has shape {fmt_shape(array.shape)}: give (L) samples, e.g. input=[1,2,3], "
            "or (C_in, L), one list per input channel, e.g. input=[[1,2],[3,4]] "
            "(no batch axis: the walkthrough shows one item)")
    return array.reshape(1, -1, array.shape[-1])


def weight_array(value: Any, kind: str, c_in: int) -> np.ndarray:
    """(k), (C_in, k) or torch's own layout, as torch's layout; C_in must match the input's."""
    array = numbers("weight", value)
    name, layout = TORCH_LAYOUT[kind]
    channels = f"the input has {c_in} channel{'s' * (c_in != 1)}"
    own = f"{name}'s own layout {layout}"
    given_shape = fmt_shape(array.shape)
    if array.ndim == 1:
        if c_in != 1:
            raise ConvscopeError(
                f"weight has shape {given_shape} = (k), taps for one input channel, but "
                f"{channels}: expected (C_in, k) = ({c_in}, k), one row of taps per input "
                f"channel, or {own}")
        return array.reshape(1, 1, -1)
    if array.ndim == 2:
        if array.shape[0] != c_in:
            raise ConvscopeError(
                f"weight has shape {given_shape} = (C_in, k), one row of taps per input "
                f"channel, but {channels}: expected ({c_in}, k), or {own}")
        return array[:, None, :] if kind == TRANSPOSE1D else array[None, :, :]
    if array.ndim == 3:
        axis = 0 if kind == TRANSPOSE1D else 1
        if array.shape[axis] != c_in:
            expected = f"({c_in}, C_out, k)" if kind == TRANSPOSE1D else f"(C_out, {c_in}, k)"
            raise ConvscopeError(f"weight has shape {given_shape} = {name}'s {layout}, but "
                                 f"{channels}: expected {expected}")
        return array
    raise ConvscopeError(
        f"weight has shape {given_shape}: give (k) taps, e.g. weight=[1,0,-1], (C_in, k), one "
        f"row of taps per input channel, or {own}")


def bias_array(value: Any, kind: str, weight_shape: tuple[int, ...]) -> np.ndarray | None:
    """One number per output channel; a bare number for a layer with one output channel."""
    if value is None:
        return None
    array = numbers("bias", value, allow_number=True)
    c_out = weight_shape[1] if kind == TRANSPOSE1D else weight_shape[0]
    if array.shape in ((), (c_out,)):
        if array.ndim == 0 and c_out != 1:
            zeros = ",".join(["0"] * c_out)
            raise ConvscopeError(
                f"bias={shown(value)} is one number, but the layer has {c_out} output channels "
                f"(weight {fmt_shape(weight_shape)} = {TORCH_LAYOUT[kind][1]}): expected "
                f"shape ({c_out},), one number per output channel, e.g. bias=[{zeros}]")
        return array.reshape(c_out)
    raise ConvscopeError(
        f"bias has shape {fmt_shape(array.shape)}, but the layer has {c_out} output "
        f"channel{'s' * (c_out != 1)} (weight {fmt_shape(weight_shape)} = "
        f"{TORCH_LAYOUT[kind][1]}): expected shape ({c_out},), one number per output channel")


def numbers(key: str, value: Any, allow_number: bool = False) -> np.ndarray:
    """A rectangular (nested) list of finite numbers as a float64 array, or a ConvscopeError."""
    if not isinstance(value, (list, tuple)) and not (allow_number and is_number(value)):
        kinds = "a number or a list of numbers" if allow_number else "a list of numbers"
        raise ConvscopeError(f"{key} must be {kinds}, e.g. "
                             f"{EXAMPLES.get(key, 'bias=[0.5]')}, got {key}={shown(value)}")
    nested_shape(value, key)
    array = np.asarray(value, dtype=np.float64)
    if not np.isfinite(array).all():
        raise ConvscopeError(f"{key} must be finite numbers, got {key}={shown(value)}")
    return array


def nested_shape(value: Any, where: str) -> tuple[int, ...]:
    """The shape of a nested list, or a ConvscopeError naming the first ragged/empty/odd item."""
    if is_number(value):
        return ()
    if not isinstance(value, (list, tuple)):
        raise ConvscopeError(f"{where} must be a number, got {shown(value)}")
    if not value:
        raise ConvscopeError(f"{where} is empty: every list needs at least one number")
    shapes = [nested_shape(item, f"{where}[{i}]") for i, item in enumerate(value)]
    for i, shape in enumerate(shapes[1:], start=1):
        if shape != shapes[0]:
            raise ConvscopeError(
                f"{where} is ragged: {where}[0] has {describe_shape(shapes[0])} but "
                f"{where}[{i}] has {describe_shape(shape)}; every row needs the same length")
    return (len(value), *shapes[0])


def is_number(value: Any) -> bool:
    # bool is an int to Python, but true/false for a sample is a slip, not a number
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def describe_shape(shape: tuple[int, ...]) -> str:
    if not shape:
        return "a single number"
    if len(shape) == 1:
        return f"{shape[0]} number{'s' * (shape[0] != 1)}"
    return f"shape {fmt_shape(shape)}"


def shown(value: Any) -> str:
    """A value as the user would type it, cut short if long."""
    text = str(value).replace(" ", "") if isinstance(value, (list, tuple)) else str(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."

