"""Conv1d step by step: every output as its sum of products, as the tutorial checks y[0,0,0]."""

from __future__ import annotations

import numpy as np

from convscope.explainer import reference as ref
from convscope.explainer.examples import Layer
from convscope.explainer.steps.common import layer_header, length_formulas
from convscope.text import fmt_number, fmt_operand, fmt_shape, fmt_tensor, fmt_vector


def conv1d_walkthrough(x: np.ndarray, layer: Layer) -> list[str]:
    w = layer.weight.array()
    b = None if layer.bias is None else layer.bias.array()
    one_channel = x.shape[:2] == (1, 1) and layer.out_channels == 1
    lines = layer_header(layer)
    if one_channel:
        lines += [f"  x = {fmt_vector(x)}", f"  w = {fmt_vector(w)}"]
    else:
        batch = f" of {x.shape[0]}" if x.shape[0] > 1 else ""
        lines.append(f"  x[0] = {fmt_tensor(x[0])}  "
                     f"(x is {fmt_shape(x.shape)}: batch item 0{batch})")
        lines += [f"  w[{o}] = {fmt_tensor(w[o])}" for o in range(w.shape[0])]
    if b is not None:
        lines.append(f"  b = {fmt_vector(b)}")
    lines += length_formulas(layer, x.shape) + [""]
    if layer.padding:
        lines.append(f"Padding={layer.padding} puts zeros at positions before 0 and after "
                     f"{x.shape[2] - 1}.")
    step = f"stride={layer.stride} apart" + (f", taps dilation={layer.dilation} apart"
                                             if layer.dilation > 1 else "")
    lines.append(f"Each output is a sum of products over a window of the input, windows {step}:")
    lines += ["  " + line for line in conv1d_output_lines(x, w, b, layer, one_channel)]
    return lines


def conv1d_output_lines(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, layer: Layer,
                        one_channel: bool) -> list[str]:
    lines = []
    for o, l, terms, value in ref.conv1d_sums(x, w, b, layer.stride, layer.padding,
                                              layer.dilation, layer.groups, n=0):
        name = f"y[{l}]" if one_channel else f"y[0,{o},{l}]"
        lines.append(f"{name} = {_terms_text(terms, o, b, one_channel)} = {fmt_number(value)}")
    return lines


def _terms_text(terms: list, o: int, b: np.ndarray | None, one_channel: bool) -> str:
    """'x[0]·w[0] + ... = 1·2 + ...', or per-channel dot products when there are many terms."""
    bias_name = "" if b is None else (" + b" if one_channel else f" + b[{o}]")
    bias_value = "" if b is None else f" + {fmt_operand(b[o])}"
    if one_channel or len(terms) <= 3:
        names = " + ".join(f"x[{t}]·w[{j}]" if one_channel
                           else f"x[0,{i},{t}]·w[{o},{_local(i, terms)},{j}]"
                           for i, t, _, j, _ in terms)
        values = " + ".join(f"{fmt_operand(xv)}·{fmt_operand(wv)}" for _, _, xv, _, wv in terms)
        return f"{names}{bias_name} = {values}{bias_value}"
    channels = sorted({i for i, *_ in terms})
    names, values = [], []
    for local, i in enumerate(channels):
        mine = [term for term in terms if term[0] == i]
        start, stop = mine[0][1], mine[-1][1] + 1
        step = mine[1][1] - mine[0][1] if len(mine) > 1 else 1
        window = f"{start}:{stop}" + (f":{step}" if step > 1 else "")
        names.append(f"x[0,{i},{window}]·w[{o},{local}]")
        values.append(fmt_operand(sum(xv * wv for _, _, xv, _, wv in mine)))
    return f"{' + '.join(names)}{bias_name} = {' + '.join(values)}{bias_value}"


def _local(i: int, terms: list) -> int:
    return i - min(term[0] for term in terms)
