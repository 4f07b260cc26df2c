"""Step-by-step explanations of one example, as lines of text.

A transposed convolution is shown three ways (scatter rows, zero insertion with the flipped
kernel, the matrix C^T) and compared with the tutorials' shortcut; a Conv1d is shown as one
sum of products per output, the way the tutorial checks y[0,0,0] by hand. A small transposed
convolution with several channels gets its scatter per output channel. Examples too big or with
too many channels to print get their shapes and length formulas instead.
"""

from __future__ import annotations

import numpy as np

from convscope.explainer.examples import (
    CONV1D,
    TRANSPOSE1D,
    TRANSPOSE2D,
    Example,
    ExampleRun,
    Layer,
)
from convscope.explainer.steps.common import layer_header, length_formulas
from convscope.explainer.steps.conv1d import conv1d_walkthrough
from convscope.explainer.steps.transpose1d import transpose1d_walkthrough
from convscope.explainer.steps.transpose1d_channels import fits, transpose1d_channels_walkthrough
from convscope.explainer.steps.transpose2d import transpose2d_walkthrough
from convscope.text import fmt_shape


def walkthrough(example: Example, run: ExampleRun) -> list[str]:
    """The explanation that fits the example: every step for small ones, shapes otherwise."""
    if len(example.layers) == 1 and is_small(example.layer, run.input):
        layer, x = example.layer, run.input
        if layer.kind == TRANSPOSE1D:
            return transpose1d_walkthrough(x, layer, example)
        if layer.kind == TRANSPOSE2D:
            return transpose2d_walkthrough(x, layer)
        return conv1d_walkthrough(x, layer)
    if len(example.layers) == 1 and fits(example.layer, run.input):
        return transpose1d_channels_walkthrough(run.input, example.layer, example)
    return shapes_walkthrough(example, run)


def is_small(layer: Layer, x: np.ndarray) -> bool:
    if layer.kind == CONV1D:
        return x.shape[2] <= 40 and layer.out_channels * x.shape[2] <= 64
    one_channel = x.shape[:2] == (1, 1) and layer.out_channels == 1
    return one_channel and max(x.shape[2:]) <= (32 if layer.kind == TRANSPOSE1D else 4)


def shapes_walkthrough(example: Example, run: ExampleRun) -> list[str]:
    note = f"  ({example.note})" if example.note else ""
    lines = [f"input {fmt_shape(run.input.shape)}{note}"]
    shape = run.input.shape
    for index, (layer, output) in enumerate(zip(example.layers, run.reference)):
        header = layer_header(layer)
        lines += [f"layer {index}: {header[0]}"] + header[1:]
        lines += length_formulas(layer, shape)
        lines.append(f"  output {fmt_shape(output.shape)}")
        shape = output.shape
    lines.append(f"max |reference - torch| = {np.abs(run.reference[-1] - run.torch[-1]).max():.1e}")
    return lines
