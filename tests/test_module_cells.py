"""Stateful streaming of a user's nn.Module (stack.module_cells): chunks of any size through the
cells equal one forward; a forward that is not a chain of leaves with cells is refused, naming
the first op without one."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from convscope.errors import ConvscopeError
from convscope.stack.module_cells import stream_module_stateful
from tests.reference_codecs import Snake1d
from tests.test_analysis_published import hifigan


def chain() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(weight_norm(nn.Conv1d(4, 8, 7, padding=3)), nn.LeakyReLU(0.1),
                         nn.ConvTranspose1d(8, 6, 8, stride=4, padding=2), Snake1d(6),
                         nn.Conv1d(6, 6, 3, stride=2, dilation=2, padding=1),
                         nn.ConvTranspose1d(6, 1, 5, stride=3, output_padding=1), nn.Tanh()).eval()


def chunks(x: torch.Tensor, seed: int) -> list[torch.Tensor]:
    rng, at, out = random.Random(seed), 0, []
    while at < x.shape[-1]:
        size = rng.choice([1, 2, rng.randint(1, 40)])
        out.append(x[..., at: at + size])
        at += size
    return out


def test_a_chain_of_leaves_streams_statefully_equal_to_one_shot():
    model, x = chain(), torch.randn(1, 4, 157)
    with torch.no_grad():
        expected = model(x)
    for seed in range(3):
        got = torch.cat(list(stream_module_stateful(model, chunks(x, seed), x[..., :32])), dim=-1)
        assert got.shape == expected.shape
        assert float((got - expected).abs().max() / expected.abs().max()) < 1e-5


def test_hifigan_is_refused_naming_the_first_op_without_a_cell():
    model = hifigan("hifigan_v1", 32).eval()
    with pytest.raises(ConvscopeError) as caught:
        list(stream_module_stateful(model, [torch.randn(1, 80, 10)], torch.randn(1, 80, 20)))
    message = str(caught.value)
    assert message.startswith("stream.mode=stateful: ups.0 (ParametrizedConvTranspose1d)")
    assert "stream.mode=overlap" in message


def test_reflect_padding_and_an_op_after_the_last_leaf_are_refused():
    reflect = nn.Sequential(nn.Conv1d(1, 1, 3, padding=1, padding_mode="reflect")).eval()
    with pytest.raises(ConvscopeError, match=r"0 \(Conv1d\) has padding_mode='reflect'"):
        list(stream_module_stateful(reflect, [torch.randn(1, 1, 9)], torch.randn(1, 1, 9)))

    class Squashed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 1, 3, padding=1)

        def forward(self, x):
            return torch.tanh(self.conv(x))

    with pytest.raises(ConvscopeError, match="does more than its leaf layers after conv"):
        list(stream_module_stateful(Squashed().eval(), [torch.randn(1, 1, 9)],
                                    torch.randn(1, 1, 9)))
