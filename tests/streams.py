"""What the streaming tests share: every top-level layer's one-shot output, a collector that
checks each layer's streamed samples arrive once and in order, and the comparison."""

from __future__ import annotations

import torch


def layer_outputs(stack: torch.nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """Each top-level layer's output of one forward pass over the whole input."""
    with torch.no_grad():
        outputs, h = [], x
        for module in stack:
            h = module(h)
            outputs.append(h)
    return outputs


class InOrder:
    """A streaming engine's `emit(layer, start, samples)` callback that keeps every layer's
    pieces, asserting each sample arrives exactly once and in order."""

    def __init__(self, layers: int):
        self.pieces: list[list[torch.Tensor]] = [[] for _ in range(layers)]
        self.starts = [0] * layers

    def __call__(self, layer: int, start: int, samples: torch.Tensor) -> None:
        assert start == self.starts[layer], "samples must arrive once, in order"
        self.starts[layer] += samples.shape[-1]
        self.pieces[layer].append(samples.clone())

    def joined(self, empty: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's streamed output (`empty` where a layer emitted nothing)."""
        return [torch.cat(p, dim=-1) if p else empty for p in self.pieces]


def assert_same_outputs(expected, streamed, atol: float = 1e-5) -> None:
    for one_shot, chunked in zip(expected, streamed):
        assert chunked.shape == one_shot.shape
        torch.testing.assert_close(chunked, one_shot, atol=atol, rtol=0)
