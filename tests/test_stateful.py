"""Stateful chunked streaming (stream.mode=stateful): chunks of any size through per-layer state
give the one-shot forward sample for sample, compute each sample once, and emit each output with
the stack's receptive-field lookahead as latency."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from convscope.config.schema import LayerConfig
from convscope.errors import ConvscopeError
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack
from convscope.stack.receptive import receptive_reaches
from convscope.stack.stateful import StatefulStack, stream_stateful

L = LayerConfig
T = "ConvTranspose1d"
REFERENCE = [  # the seed example (configs/model/seed_example.yaml)
    L(type=T, in_channels=1, out_channels=2, kernel_size=3, stride=1, padding=1),
    L(type=T, in_channels=2, out_channels=3, kernel_size=5, stride=2, padding=2,
      output_padding=1)]


def chunk_sizes(rng: random.Random, length: int, largest: int) -> list[int]:
    sizes, done = [], 0
    while done < length:
        size = min(length - done, rng.choice([1, 1, rng.randint(1, largest)]))
        sizes.append(size)
        done += size
    return sizes


def run_both(specs, length, sizes, channels=1, seed=0):
    """(every top-level layer's one-shot output, the same streamed, emitted count per chunk)."""
    plans = plan_stack(specs, (1, channels, length))
    stack = build_stack(plans, seed).eval()
    x = torch.randn(1, channels, length, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected, h = [], x
        for module in stack:
            h = module(h)
            expected.append(h)
    pieces: list[list[torch.Tensor]] = [[] for _ in plans]
    starts = [0] * len(plans)

    def collect(layer, start, samples):
        assert start == starts[layer], "samples must arrive once, in order"
        starts[layer] += samples.shape[-1]
        pieces[layer].append(samples.clone())

    engine = StatefulStack(plans, stack)
    emitted = []

    def chunks():
        at = 0
        for size in sizes:
            yield x[..., at: at + size]
            at += size
            emitted.append((at, starts[-1]))

    stream_stateful(engine, chunks(), collect)
    emitted.append((length, starts[-1]))  # the last chunk's count, now that it was pushed
    emitted = emitted[1:]
    streamed = [torch.cat(p, dim=-1) if p else x[..., :0] for p in pieces]
    return expected, streamed, (plans, stack, emitted)


def assert_equal(expected, streamed):
    for one_shot, chunked in zip(expected, streamed):
        assert chunked.shape == one_shot.shape
        torch.testing.assert_close(chunked, one_shot, atol=1e-5, rtol=0)


def test_reference_stack_with_odd_chunks_equals_one_shot():
    rng = random.Random(0)
    for length in (1, 2, 7, 301):
        for largest in (1, 3, 17, 400):
            expected, streamed, _ = run_both(REFERENCE, length, chunk_sizes(rng, length, largest))
            assert_equal(expected, streamed)
