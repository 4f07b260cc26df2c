"""Overlap streaming of any nn.Module (stack.overlap) against one forward of the whole signal.

The published vocoders and codec decoders (tests/reference_generators.py, reference_codecs.py)
with random weights, streamed in blocks much shorter than the input, must equal the one-shot
output to 1e-5 relative (max error over the output's peak). BigVGAN v2 runs in float64: its
Snake activations grow large enough that float32 rounding, summed in another order by a shorter
forward, moves the output by ~5e-5 (float64 shows the blocks themselves are exact). The context
itself is checked against the receptive field torch's autograd gives (a gradient probe).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convscope.errors import ConvscopeError
from convscope.stack.overlap import Unbounded, context_of, overlap_blocks, stream_overlap
from convscope.stack.trace import torch_threads
from tests.reference_codecs import DacDecoder, SEANetDecoder
from tests.reference_generators import MelGanGenerator, randomise_
from tests.test_analysis_published import bigvgan, hifigan

PUBLISHED = {  # name: (factory, input shape, randomise, dtype)
    "hifigan_v1": (lambda: hifigan("hifigan_v1", 32), (1, 80, 120), True, torch.float32),
    "hifigan_v2": (lambda: hifigan("hifigan_v2", 32), (1, 80, 120), True, torch.float32),
    "hifigan_v3": (lambda: hifigan("hifigan_v3", 32), (1, 80, 120), True, torch.float32),
    "melgan": (lambda: MelGanGenerator(80, 4, 3), (1, 80, 120), True, torch.float32),
    "bigvgan_v2_24k": (lambda: bigvgan(128), (1, 100, 60), True, torch.float64),
    "dac_decoder": (lambda: DacDecoder(8, 64), (1, 8, 120), False, torch.float32),
    "seanet_decoder": (lambda: SEANetDecoder(dimension=16, n_filters=4, lstm=0), (1, 16, 120),
                       False, torch.float32),
}


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got - expected).abs().max() / expected.abs().max())


def published(name: str) -> tuple[nn.Module, torch.Tensor]:
    make, shape, randomise, dtype = PUBLISHED[name]
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    if randomise:
        randomise_(model, x)
    return model.to(dtype), x.to(dtype)


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_models_stream_equal_to_one_shot(name):
    model, x = published(name)
    with torch_threads(2), torch.no_grad():
        expected = model(x)
        context = context_of(model, x)
        # about 7 blocks, none a multiple of another's length: every boundary lands elsewhere
        got = stream_overlap(model, x, context=context,
                             block_output_samples=int(x.shape[-1] * context.rate / 7) + 3)
    assert got.shape == expected.shape
    assert relative_error(got, expected) < 1e-5
    assert context.left > 0 and context.right > 0  # non-causal generators read both ways


class Lopsided(nn.Module):
    """Context by formula: a kernel-5 conv padded 3 left and 1 right (output j reads j-3..j+1),
    then a kernel-3 conv at dilation 4 padded 8 left, 0 right (j-8..j): left 11, right 1."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv1d(1, 2, 5)
        self.b = nn.Conv1d(2, 1, 3, dilation=4)

    def forward(self, x):
        return self.b(F.pad(torch.relu(self.a(F.pad(x, (3, 1)))), (8, 0)))


def test_context_is_the_receptive_field_by_formula():
    model, x = Lopsided().eval(), torch.randn(1, 1, 200)
    context = context_of(model, x)
    assert (context.left, context.right, context.alignment, context.rate) == (11, 1, 1, 1)
    with torch.no_grad():
        expected = model(x)
        got = torch.cat([y for _, y in overlap_blocks(model, x, context, 7)], dim=-1)
    assert relative_error(got, expected) < 1e-5
    # one sample less context on either side and the blocks are wrong
    for fewer in (replace(context, left=10), replace(context, right=0)):
        with torch.no_grad():
            short = torch.cat([y for _, y in overlap_blocks(model, x, fewer, 7)], dim=-1)
        assert relative_error(short, expected) > 1e-3


class DownUp(nn.Module):
    """An encoder-decoder at rate 1 whose inner tensors run at 1/2 and 1/6 of the input rate:
    blocks must start at multiples of 6 input samples, or they leave the signal's frame grid."""

    def __init__(self):
        super().__init__()
        self.down2 = nn.Conv1d(1, 4, 4, stride=2, padding=1)
        self.down3 = nn.Conv1d(4, 4, 3, stride=3, padding=1)
        self.up = nn.ConvTranspose1d(4, 1, 6, stride=6)

    def forward(self, x):
        return self.up(torch.tanh(self.down3(self.down2(x))))


def test_rate_changing_inner_tensors_set_the_alignment():
    torch.manual_seed(0)
    model, x = DownUp().eval(), torch.randn(1, 1, 601)
    context = context_of(model, x)
    assert context.alignment == 6 and context.rate == 1
    with torch.no_grad():
        expected = model(x)
        got = stream_overlap(model, x, context=context, block_output_samples=50)
    assert relative_error(got, expected) < 1e-5
    # blocks of 49 samples, off the grid: the inner frames of a block no longer line up with the
    # signal's, so the blocks do not even make the outputs they must
    off_grid = replace(context, alignment=1)
    with pytest.raises(ConvscopeError, match="made outputs"):
        list(overlap_blocks(model, x, off_grid, 49))


def test_blocks_hold_only_their_context():
    model, x = published("melgan")
    x = x[..., :60]
    context = context_of(model, x)
    block = context.input_block(256 * 10)
    seen = []
    hook = model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[-1]))
    try:
        list(overlap_blocks(model, x, context, block))
    finally:
        hook.remove()
    assert max(seen) <= context.chunk_samples(block) < x.shape[-1]


def test_an_lstm_is_unbounded_and_names_its_row():
    model = SEANetDecoder(dimension=16, n_filters=4, lstm=2).eval()
    with pytest.raises(Unbounded) as caught:
        context_of(model, torch.randn(1, 16, 40))
    assert caught.value.row.startswith("model.1.lstm")
    assert "LSTM" in str(caught.value) and "earlier sample" in str(caught.value)


def test_a_norm_over_the_whole_signal_is_unbounded():
    class Normalised(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(1, 1, 3, padding=1)

        def forward(self, x):
            y = self.conv(x)
            return y / y.abs().amax(dim=-1, keepdim=True)

    with pytest.raises(Unbounded):
        context_of(Normalised().eval(), torch.randn(1, 1, 50))


@pytest.mark.slow
def test_hifigan_v1_streams_minutes_of_frames_equal_to_one_shot():
    """Three minutes of 22.05 kHz frames (15.5k frames, 4M output samples) through HiFi-GAN V1
    at a quarter of its width, blocks of one second."""
    torch.manual_seed(0)
    model = hifigan("hifigan_v1", 128).eval()
    x = torch.randn(1, 80, 3 * 60 * 22050 // 256)
    randomise_(model, x[..., :200])
    with torch.no_grad():
        expected = model(x)
        got = stream_overlap(model, x, block_output_samples=22050)
    assert relative_error(got, expected) < 1e-5
