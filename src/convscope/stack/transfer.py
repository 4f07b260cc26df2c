"""Moving streamed blocks to an accelerator and back without stalling it.

`to_device_ahead` copies each input block from pinned (page-locked) host memory with a
non-blocking copy on a side CUDA stream, one block ahead: block k+1 crosses the bus while block k
is computed. `HostHandoff` wraps a streamed run's output sink: each block's outputs are checked
for NaN/inf by one sum per layer on the device and the last layer is copied back to pinned host
memory on the side stream; the sink gets them one block later, when they are ready, so the CPU's
work (WAV writes, envelopes) overlaps the device's next block instead of waiting for it.

On the CPU the same code runs with no pinning, no streams and no copies (tests/test_transfer.py
runs it so); streamed runs use it only for a CUDA device (pipeline/streamed.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Optional

import torch

OutputSink = Callable[[int, int, torch.Tensor], None]  # as stack.streaming's


def _side_stream(device: torch.device) -> Optional["torch.cuda.Stream"]:
    return torch.cuda.Stream(device) if device.type == "cuda" else None


def _on(stream) -> object:
    return torch.cuda.stream(stream) if stream is not None else nullcontext()


def _event(stream) -> Optional["torch.cuda.Event"]:
    if stream is None:
        return None
    event = torch.cuda.Event()
    event.record(stream)
    return event


def to_device_ahead(blocks: Iterator[torch.Tensor], device: torch.device
                    ) -> Iterator[torch.Tensor]:
    """`blocks` (host tensors) on `device`, each copy issued one block before it is needed."""
    side = _side_stream(device)
    pending = None
    for host in blocks:
        staged = _stage_in(host, device, side)
        if pending is not None:
            yield _ready(pending, side)
        pending = staged
    if pending is not None:
        yield _ready(pending, side)


def _stage_in(host: torch.Tensor, device: torch.device, side) -> tuple:
    if side is None:
        return host.to(device), None
    pinned = host.pin_memory()  # page-locked: the copy runs asynchronously, by DMA
    with _on(side):
        moved = pinned.to(device, non_blocking=True)
    return moved, _event(side)


def _ready(staged: tuple, side) -> torch.Tensor:
    moved, event = staged
    if event is not None:
        current = torch.cuda.current_stream(moved.device)
        current.wait_event(event)  # the compute waits for the copy, the CPU does not
        moved.record_stream(current)  # made on the side stream, used on this one
    return moved


@dataclass
class _Block:
    outputs: list[tuple[int, int, torch.Tensor]]  # (layer, start, samples) on the device
    sums: torch.Tensor  # one per output, on the host once `event` has passed
    host_last: torch.Tensor  # the last layer's samples on the host
    event: Optional["torch.cuda.Event"]


class HostHandoff:
    """An OutputSink for a run on `device` that passes `sink` each block one block late.

    The sink gets the last layer's samples on the host and, when `all_layers` (plots drawn from
    every layer), the other layers' samples as they are (on the device); without it only a block
    holding NaN/inf passes them on, so the sink's own check names the first such layer."""

    def __init__(self, sink: OutputSink, last_layer: int, device: torch.device,
                 all_layers: bool):
        self.sink, self.last, self.device, self.all_layers = sink, last_layer, device, all_layers
        self.side = _side_stream(device)
        self._outputs: list[tuple[int, int, torch.Tensor]] = []
        self._pending: Optional[_Block] = None

    def __call__(self, layer: int, start: int, samples: torch.Tensor) -> None:
        self._outputs.append((layer, start, samples))
        if layer == self.last:  # every block ends with the last layer's samples
            block, self._outputs = self._stage_out(self._outputs), []
            previous, self._pending = self._pending, block
            if previous is not None:
                self._release(previous)

    def finish(self) -> None:
        """Pass on the last block; call once the forward is done."""
        if self._pending is not None:
            block, self._pending = self._pending, None
            self._release(block)

    def _stage_out(self, outputs: list[tuple[int, int, torch.Tensor]]) -> _Block:
        sums = torch.stack([samples.sum() for _, _, samples in outputs])  # NaN/inf propagate
        last = outputs[-1][2]
        if self.side is None:
            return _Block(outputs, sums, last, None)
        self.side.wait_stream(torch.cuda.current_stream(self.device))  # after the compute
        with _on(self.side):
            host_sums = torch.empty(sums.shape, pin_memory=True).copy_(sums, non_blocking=True)
            host_last = torch.empty(last.shape, pin_memory=True).copy_(last, non_blocking=True)
        for _, _, samples in outputs:
            samples.record_stream(self.side)
        sums.record_stream(self.side)
        return _Block(outputs, host_sums, host_last, _event(self.side))

    def _release(self, block: _Block) -> None:
        if block.event is not None:
            block.event.synchronize()
        finite = all(math.isfinite(s) for s in block.sums.tolist())
        for layer, start, samples in block.outputs:
            if layer == self.last:
                self.sink(layer, start, block.host_last)
            elif self.all_layers or not finite:
                self.sink(layer, start, samples)
