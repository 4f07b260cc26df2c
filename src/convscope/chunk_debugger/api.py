"""convscope.chunks: the chunk debugger on any nn.Module from Python.

    r = convscope.chunks(generator, mel, chunk=8, sample_rate=22050 / 256)
    print(r)                       # the report convscope-chunks logs
    r.stack_context, r.overlap_ms  # the overlap that makes chunked output exact
    r.plot("chunk_errors.png")     # the figure convscope-chunks writes
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from convscope.chunk_debugger.figure import write_chunk_plot
from convscope.chunk_debugger.findings import ChunkReport
from convscope.chunk_debugger.model import debug_model
from convscope.chunk_debugger.report import report_text
from convscope.errors import ConvscopeError
from convscope.stack.rates import exact_rate

Rate = Union[int, float, str]


@dataclass(repr=False)
class ChunksReport(ChunkReport):
    """What convscope.chunks returns: the chunk report, printed as convscope-chunks logs it,
    with the figure it writes one call away."""

    def __str__(self) -> str:
        return report_text(self, self.name)

    __repr__ = __str__  # a REPL or notebook user wants the report, not the arrays

    def plot(self, path: Union[str, Path], boundaries: int = 3, window_ms: float = 0.5) -> Path:
        """chunk_errors.png's figure for this report, written to `path`."""
        return write_chunk_plot(self, Path(path), self.name, boundaries, window_ms)


def chunks(model: nn.Module, x: Union[torch.Tensor, np.ndarray], *, chunk: int,
           sample_rate: Rate, tolerance: float = 1e-5, name: Optional[str] = None
           ) -> ChunksReport:
    """Run `model` on `x` one shot and in chunks of `chunk` input samples (frames for a feature
    input), each on its own as naive real-time code does; say where and how much the outputs
    differ, which leaf's missing context causes it, and the overlap that makes it exact.

    x: (channels, samples) or (1, channels, samples); `sample_rate`: x's rate (for a mel input
    the frame rate, e.g. 22050 / 256 or "22050/256"). The model runs in eval mode and is left
    as it was. Bad input raises ConvscopeError with one line.
    """
    if not isinstance(model, nn.Module):
        raise ConvscopeError(f"chunks: model must be a torch.nn.Module, got "
                             f"{type(model).__name__}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ConvscopeError(f"chunks: chunk must be a whole number of input samples >= 1, "
                             f"got {chunk!r}")
    if not 0 < tolerance < 1:
        raise ConvscopeError(f"chunks: tolerance must be in (0, 1) (of the output's peak), got "
                             f"{tolerance!r}")
    rate = exact_rate(sample_rate, "sample_rate")
    tensor = torch.as_tensor(x)
    if tensor.dim() == 2:
        tensor = tensor[None]
    if tensor.dim() != 3 or tensor.shape[0] != 1:
        raise ConvscopeError(f"chunks: x must be (channels, samples) or (1, channels, "
                             f"samples), got shape {list(tensor.shape)}")
    parameters = [p for p in model.parameters() if p.is_floating_point()]
    if parameters:
        tensor = tensor.to(parameters[0].device, parameters[0].dtype)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        report = debug_model(model, tensor, chunk, rate, tolerance)
    finally:
        for m, training in modes.items():
            m.training = training
    values = {field.name: getattr(report, field.name) for field in fields(report)}
    return ChunksReport(**{**values, "name": name or type(model).__name__})
