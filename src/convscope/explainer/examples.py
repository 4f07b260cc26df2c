"""Every worked example from the source tutorials (shared/WORKED_EXAMPLES.md), as data.

Each example is an input, one or more layers and what the tutorial says comes out: numbers, or
shapes for examples built on random tensors. `run_example` pushes it through convscope's own
NumPy implementation (convscope.explainer.reference) and through torch and records every comparison.
Random tensors come from fixed seeds, so every run prints the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import torch

from convscope.explainer import reference
from convscope.stack.lengths import conv1d_output_length

Shape = tuple[int, ...]
ATOL = 1e-4  # the tutorials print the 2D results to one decimal place (1.1 * 3 = 3.3)

CONV1D, TRANSPOSE1D, TRANSPOSE2D = "conv1d", "conv_transpose1d", "conv_transpose2d"
TORCH_CLASS = {CONV1D: "Conv1d", TRANSPOSE1D: "ConvTranspose1d", TRANSPOSE2D: "ConvTranspose2d"}


@dataclass(frozen=True)
class Tensor:
    """A tensor an example starts from: given numbers, or seeded uniform values in [low, 1)."""

    shape: Shape
    values: tuple[float, ...] | None = None  # row-major; None means random
    seed: int = 0
    low: float = 0.0

    @property
    def is_random(self) -> bool:
        return self.values is None

    def array(self) -> np.ndarray:
        if self.values is None:
            rng = np.random.default_rng(self.seed)
            return rng.uniform(self.low, 1.0, size=self.shape)
        return np.asarray(self.values, dtype=np.float64).reshape(self.shape)


def given(values, shape: Shape) -> Tensor:
    flat = tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())
    if len(flat) != int(np.prod(shape)):
        raise ValueError(f"{len(flat)} values do not fill shape {shape}")
    return Tensor(shape=tuple(shape), values=flat)


def rand(shape: Shape, seed: int, low: float = 0.0) -> Tensor:
    return Tensor(shape=tuple(shape), seed=seed, low=low)


@dataclass(frozen=True)
class Layer:
    """One Conv1d / ConvTranspose1d / ConvTranspose2d with its weights, in torch's layout."""

    kind: str  # CONV1D, TRANSPOSE1D or TRANSPOSE2D
    weight: Tensor
    bias: Tensor | None = None
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0
    output_padding: int | tuple[int, int] = 0
    dilation: int | tuple[int, int] = 1
    groups: int = 1

    @property
    def in_channels(self) -> int:
        shape = self.weight.shape
        return shape[1] * self.groups if self.kind == CONV1D else shape[0]

    @property
    def out_channels(self) -> int:
        shape = self.weight.shape
        return shape[0] if self.kind == CONV1D else shape[1] * self.groups

    @property
    def kernel_size(self) -> int | tuple[int, ...]:
        kernel = self.weight.shape[2:]
        return kernel[0] if len(kernel) == 1 else kernel

    def describe(self) -> str:
        """The torch constructor call, showing only arguments that differ from the defaults."""
        args = [str(self.in_channels), str(self.out_channels), f"kernel_size={self.kernel_size}"]
        for name, default in (("stride", 1), ("padding", 0), ("output_padding", 0),
                              ("dilation", 1), ("groups", 1)):
            value = getattr(self, name)
            if value != default and value != (default, default):
                args.append(f"{name}={value}")
        if self.bias is None:
            args.append("bias=False")
        return f"{TORCH_CLASS[self.kind]}({', '.join(args)})"

    def reference(self, x: np.ndarray, method: str = "scatter") -> np.ndarray:
        weight, bias = self.weight.array(), None if self.bias is None else self.bias.array()
        common = dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                      groups=self.groups)
        if self.kind == CONV1D:
            return reference.conv1d(x, weight, bias, **common)
        transpose = (reference.conv_transpose1d if self.kind == TRANSPOSE1D
                     else reference.conv_transpose2d)
        return transpose(x, weight, bias, output_padding=self.output_padding, method=method,
                         **common)

    def torch_module(self) -> torch.nn.Module:
        """The torch layer with this layer's weights copied in (float64, so results are exact)."""
        cls = getattr(torch.nn, TORCH_CLASS[self.kind])
        extra = {} if self.kind == CONV1D else {"output_padding": self.output_padding}
        module = cls(self.in_channels, self.out_channels, self.kernel_size, stride=self.stride,
                     padding=self.padding, dilation=self.dilation, groups=self.groups,
                     bias=self.bias is not None, dtype=torch.float64, **extra)
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(self.weight.array()))
            if self.bias is not None:
                module.bias.copy_(torch.from_numpy(self.bias.array()))
        return module


@dataclass(frozen=True)
class Example:
    name: str
    section: str
    summary: str
    input: Tensor
    layers: tuple[Layer, ...]
    expected: Tensor | None = None  # the tutorial's numbers for the last layer's output
    expected_shapes: tuple[Shape, ...] = ()  # each layer's output shape
    expected_weight_shapes: tuple[Shape, ...] = ()
    expected_bias_shapes: tuple[Shape, ...] = ()
    same_as: Layer | None = None  # an equivalent layer the tutorial names (dilation examples)
    expected_simplified: Tensor | None = None  # what the tutorials' shortcut recipe gives
    note: str = ""

    @property
    def layer(self) -> Layer:
        return self.layers[0]


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool


@dataclass(frozen=True)
class ExampleRun:
    example: Example
    input: np.ndarray
    reference: tuple[np.ndarray, ...]  # each layer's output
    torch: tuple[np.ndarray, ...]
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def matches(self) -> bool:
        return all(check.ok for check in self.checks)


# ---------------------------------------------------------------------------------------------
# Running an example
# ---------------------------------------------------------------------------------------------

def run_example(example: Example) -> ExampleRun:
    """Run an example through the reference implementation and torch and compare everything."""
    x = example.input.array()
    ref_outputs, torch_outputs = [], []
    ref_in, torch_in = x, torch.from_numpy(x)
    for layer in example.layers:
        ref_in = layer.reference(ref_in)
        with torch.no_grad():
            torch_in = layer.torch_module()(torch_in)
        ref_outputs.append(ref_in)
        torch_outputs.append(torch_in.numpy())
    checks = tuple(_checks(example, x, ref_outputs, torch_outputs))
    return ExampleRun(example, x, tuple(ref_outputs), tuple(torch_outputs), checks)


def _checks(example: Example, x: np.ndarray, ref_outputs: list[np.ndarray],
            torch_outputs: list[np.ndarray]) -> Iterable[Check]:
    ref, tch = ref_outputs[-1], torch_outputs[-1]
    yield Check("reference = torch", close(ref, tch))
    if example.expected is not None:
        expected = example.expected.array()
        yield Check("reference = tutorial", close(ref, expected))
        yield Check("torch = tutorial", close(tch, expected))
    if example.expected_shapes:
        yield Check("output shapes = tutorial",
                    _shapes(ref_outputs) == _shapes(torch_outputs) == example.expected_shapes)
    modules = [layer.torch_module() for layer in example.layers]
    if example.expected_weight_shapes:
        yield Check("torch weight shapes = tutorial",
                    tuple(tuple(m.weight.shape) for m in modules) == example.expected_weight_shapes)
    if example.expected_bias_shapes:
        yield Check("torch bias shapes = tutorial",
                    tuple(tuple(m.bias.shape) for m in modules) == example.expected_bias_shapes)
    if len(example.layers) == 1:
        yield from _single_layer_checks(example, x, ref)


def _single_layer_checks(example: Example, x: np.ndarray, output: np.ndarray) -> Iterable[Check]:
    layer = example.layer
    if layer.kind != CONV1D:
        others = [m for m in _methods(layer.kind) if m != "scatter"]
        if layer.kind == TRANSPOSE2D or output.size * x.size <= reference.MAX_MATRIX_ENTRIES:
            agree = all(close(layer.reference(x, m), output) for m in others)
            yield Check(f"scatter = {' = '.join(others)}", agree)
    elif output.size <= 1000:
        yield Check("every output = its sum of products", close(conv1d_by_hand(layer, x), output))
    if example.same_as is not None:
        yield Check(f"same as {example.same_as.describe()}",
                    close(example.same_as.reference(x), output))
    if example.expected_simplified is not None:
        simplified = reference.simplified_recipe(x, layer.weight.array(), layer.stride,
                                                 layer.padding)
        expected = example.expected_simplified.array()
        yield Check("simplified recipe gives the tutorial-style (wrong) numbers",
                    close(simplified, expected) and not close(simplified, output))


def conv1d_by_hand(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Every output of a Conv1d as an explicit sum of products, the way the tutorial checks one."""
    weight = layer.weight.array()
    bias = None if layer.bias is None else layer.bias.array()
    length = conv1d_output_length(x.shape[2], weight.shape[2], layer.stride, layer.padding,
                                  layer.dilation)
    y = np.zeros((x.shape[0], layer.out_channels, length))
    for n in range(x.shape[0]):
        for o, l, _, value in reference.conv1d_sums(x, weight, bias, layer.stride, layer.padding,
                                                    layer.dilation, layer.groups, n):
            y[n, o, l] = value
    return y


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=0.0, atol=ATOL))


def _shapes(arrays: Iterable[np.ndarray]) -> tuple[Shape, ...]:
    return tuple(tuple(a.shape) for a in arrays)


def _methods(kind: str) -> tuple[str, ...]:
    return reference.TRANSPOSE_METHODS_1D if kind == TRANSPOSE1D else reference.TRANSPOSE_METHODS_2D


# ---------------------------------------------------------------------------------------------
# The catalogue
# ---------------------------------------------------------------------------------------------
