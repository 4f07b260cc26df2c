"""Text pieces every step-by-step explanation starts from: the layer and its length formulas."""

from __future__ import annotations

from convscope.explainer.examples import CONV1D, TRANSPOSE1D, TRANSPOSE2D, Layer
from convscope.stack.lengths import conv1d_formula, conv_transpose1d_formula
from convscope.text import fmt_shape

MAX_LINES_PER_STEP = 16  # outputs spelled out per step; the rest follow the same pattern
LAYOUT = {CONV1D: "(out, in/groups, k)", TRANSPOSE1D: "(in, out/groups, k)",
          TRANSPOSE2D: "(in, out/groups, kH, kW)"}


def layer_header(layer: Layer) -> list[str]:
    bias = "" if layer.bias is None else f"; bias {fmt_shape(layer.bias.shape)}"
    return [layer.describe(),
            f"  weight {fmt_shape(layer.weight.shape)} = {LAYOUT[layer.kind]}{bias}"]


def length_formulas(layer: Layer, input_shape: tuple[int, ...]) -> list[str]:
    """The output-length arithmetic along each spatial axis (H and W for 2D)."""
    axes = ["L"] if len(input_shape) == 3 else ["H", "W"]
    lines = []
    for axis, name in enumerate(axes):
        def pick(value):
            return value if isinstance(value, int) else value[axis]
        k, m = layer.weight.shape[2 + axis], input_shape[2 + axis]
        s, p, d = pick(layer.stride), pick(layer.padding), pick(layer.dilation)
        if layer.kind == CONV1D:
            formula = conv1d_formula(m, k, s, p, d)
        else:
            formula = conv_transpose1d_formula(m, k, s, p, pick(layer.output_padding), d)
        lines.append("  " + formula.replace("L_out", f"{name}_out"))
    return lines


def as_sentence(parts: list[str]) -> str:
    """Join clauses with semicolons, capitalise the first letter, end with a full stop."""
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."
