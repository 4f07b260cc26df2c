"""One forward pass with forward hooks that keep every layer's output."""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn.utils.parametrize import type_before_parametrizations

from convscope.errors import ConvscopeError
from convscope.stack.backends import safe_kernels


@dataclass(frozen=True)
class LayerTrace:
    index: int
    type: str
    output: np.ndarray  # (N, C, L) float32


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConvscopeError("device: 'cuda' requested but torch.cuda.is_available() is False; "
                             "use device=cpu or device=auto")
    return torch.device(requested)


def trace_stack(stack: nn.Module, x: np.ndarray, device: torch.device,
                key: str = "model.layers") -> list[LayerTrace]:
    """Run `stack` on x (N, C, L) under no_grad; return each layer's output in order.

    A layer whose output holds NaN or inf stops the pass with a ConvscopeError naming it
    (`key`.<index>): the layers before it gave finite values (each is checked as it returns),
    so it is the first culprit, and nothing garbage reaches a WAV, a plot or a JSON file.

    `stack` is an nn.Sequential (each of its layers is traced) or a single layer (traced as layer
    0): a student with one nn.ConvTranspose1d should not have to wrap it first."""
    layers = list(stack) if isinstance(stack, nn.Sequential) else [stack]
    traces: list[LayerTrace] = []

    def record(index: int, module: nn.Module):
        def hook(_module, _inputs, output):
            check_finite(output, f"{key}.{index}", type_before_parametrizations(module).__name__)
            # weight_norm swaps in a ParametrizedConv1d class; the layer is still a Conv1d
            traces.append(LayerTrace(index, type_before_parametrizations(module).__name__,
                                     output.detach().to("cpu", torch.float32).numpy()))
        return hook

    handles = [layer.register_forward_hook(record(i, layer)) for i, layer in enumerate(layers)]
    try:
        stack.to(device)
        with torch.no_grad(), safe_kernels(stack):  # no large-stride oneDNN crash
            stack(torch.as_tensor(x, dtype=torch.float32, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return traces


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Use `threads` intra-op threads inside the block (0: leave torch's setting), then restore.

    Small convolutions (per-block streaming, the learn stage) lose more to thread
    synchronisation than they gain, and oversubscribe a shared machine.
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def check_finite(output: torch.Tensor, key: str, type_name: str, start: int = 0) -> None:
    """Raise naming `key` if `output` (N, C, L) holds NaN or inf; `start` is the index of its
    first sample in the layer's whole output (a streamed block's offset).

    A sum is finite only if every term is (NaN and inf propagate), and costs a twentieth of
    isfinite().all() (no bool tensor); only a non-finite sum, which large finite values can also
    give, pays for the element-wise search."""
    if math.isfinite(output.sum().item()):
        return
    finite = torch.isfinite(output)
    if bool(finite.all()):
        return  # the sum overflowed; every sample is finite
    batch, channel, sample = (int(i) for i in (~finite).nonzero()[0])
    value = float(output[batch, channel, sample])
    raise ConvscopeError(
        f"{key}: {type_name} gave a non-finite output ({value} at channel {channel}, sample "
        f"{start + sample}) from finite input; its parameters overflow float32 (a huge alpha, "
        "slope or weight) or the signal grew past 3.4e38 through the layers; nothing was written "
        "from it")
