"""The chunk debugger on any nn.Module: convscope.chunks and `convscope-chunks model=module`.

Models: the published HiFi-GAN V1 generator and DAC decoder (tests/reference_generators.py,
reference_codecs.py), narrow in the fast tests, at their published widths under -m slow.
Oracles: torch's own forward, run one shot, chunk by chunk, and chunk by chunk with the stated
overlap written out here; the leaf the report blames run alone with and without its context.
"""

from __future__ import annotations

import json
import math
import textwrap

import numpy as np
import pytest
import torch
from matplotlib.image import imread

import convscope
from convscope.chunk_debugger.model import leaf_calls, leaf_chunked
from convscope.errors import ConvscopeError
from convscope.rundir import RunDir
from tests.helpers import REPO, run_script
from tests.reference_codecs import DacDecoder
from tests.reference_generators import HIFIGAN_CONFIGS, HifiGanGenerator, randomise_

MEL_RATE = "22050/256"


def hifigan_v1(channels: int, frames: int, seed: int = 0):
    h = dict(HIFIGAN_CONFIGS["hifigan_v1"], upsample_initial_channel=channels)
    torch.manual_seed(seed)
    model = HifiGanGenerator(h).eval()
    x = torch.randn(1, 80, frames, generator=torch.Generator().manual_seed(seed))
    return randomise_(model, x, seed), x


def dac_decoder(channels: int, latent: int, frames: int):
    torch.manual_seed(1)
    model = DacDecoder(latent, channels).eval()
    return model, torch.randn(1, latent, frames, generator=torch.Generator().manual_seed(1))


def by_overlap(model, x: torch.Tensor, chunk: int, left: int, right: int) -> torch.Tensor:
    """Each chunk with `left` / `right` input samples of its neighbours, cropped to its own
    outputs (the output rate read from the one-shot lengths)."""
    total = x.shape[-1]
    with torch.no_grad():
        whole = model(x)
        per_sample = whole.shape[-1] // total
        pieces = []
        for a in range(0, total, chunk):
            b = min(total, a + chunk)
            start, stop = max(0, a - left), min(total, b + right)
            y = model(x[..., start:stop])
            pieces.append(y[..., (a - start) * per_sample:(b - start) * per_sample])
    return torch.cat(pieces, dim=-1)


def reached_across(model, channels: int, a: int = 48) -> tuple[int, int]:
    """By autograd, on 2a input samples: how far before sample `a` the first output after a cut
    there reads, and how far from `a` on the last output before it reads."""
    x = torch.randn(1, channels, 2 * a, requires_grad=True)
    y = model(x)
    first = a * y.shape[-1] // x.shape[-1]

    def reads(o: int) -> torch.Tensor:
        grad, = torch.autograd.grad(y[0, 0, o], x, retain_graph=True)
        return (grad.abs().sum(1)[0] > 0).nonzero().flatten()

    return a - int(reads(first).min()), int(reads(first - 1).max()) - (a - 1)


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def check_blamed_leaf_and_overlap(model, x, chunk, report, rate=22050 / 256):
    """The leaf named first lacks context of its own: chunking it alone (all else exact) gives
    an error, and giving it alone its context removes it. The stated overlap is what autograd
    says the outputs next to a cut read across it, and chunks with it equal the one shot."""
    assert report.overall.first is not None
    worst = report.culprits()[0]
    assert report.__str__().count(f"the clicks come mostly from {worst.key}") == 1
    leaf = next(leaf for leaf in leaf_calls(model, x) if leaf.name == worst.key)
    cuts = list(range(chunk, x.shape[-1], chunk))
    with torch.no_grad():
        exact = model(x)
    alone = leaf_chunked(model, x, leaf, cuts)
    assert relative_error(alone, exact) > 1e-3
    given = leaf_chunked(model, x, leaf, cuts, context=leaf.context)
    assert relative_error(given, exact) < 1e-5

    left, right = report.stack_context
    assert relative_error(by_overlap(model, x, chunk, left, right), exact) < 1e-5
    assert (left, right) == reached_across(model, x.shape[1])
    assert report.overlap_check is not None and report.overlap_check.first is None
    assert math.isclose(report.overlap_ms[0], left / rate * 1000)


def test_hifigan_v1_names_a_leaf_whose_own_context_is_cut_and_states_an_exact_overlap():
    model, x = hifigan_v1(channels=16, frames=16)
    report = convscope.chunks(model, x, chunk=8, sample_rate=MEL_RATE)
    check_blamed_leaf_and_overlap(model, x, 8, report)
    # the published layer names and kernels, and every one of its 78 convs examined
    assert len(report.layers) == 78
    labels = {layer.key: layer.label for layer in report.layers}
    assert labels["conv_pre"] == "Conv1d k7 s1 p3" and labels["ups.0"] == "ConvTranspose1d k16 s8 p4"
    assert labels["resblocks.2.convs1.2"] == "Conv1d k11 s1 p25 d5"
    conv_pre = next(layer for layer in report.layers if layer.key == "conv_pre")
    assert (conv_pre.context.left, conv_pre.context.right) == (3, 3)  # k7 p3: 3 either side
    # the whole report as text and figure, as convscope-chunks writes them
    text = str(report)
    assert "exact streaming needs" in text and " ms) of context before each chunk" in text
    assert model.training is False and all(not m.training for m in model.modules())


def test_dac_decoder_through_its_torchscript_snake(tmp_path):
    model, x = dac_decoder(channels=32, latent=8, frames=12)
    report = convscope.chunks(model, x, chunk=4, sample_rate=44100 / 512, name="dac")
    check_blamed_leaf_and_overlap(model, x, 4, report, 44100 / 512)
    keys = {layer.key for layer in report.layers}
    assert "model.0" in keys and not any("Snake" in layer.label for layer in report.layers)
    png = report.plot(tmp_path / "chunk_errors.png")
    assert imread(png).shape[0] > 100
    doc = report.as_json()
    assert doc["stack_context"]["left"] == report.stack_context[0]
    assert doc["worst_layer"] == report.culprits()[0].key


def test_a_model_without_context_has_no_difference():
    model = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 1), torch.nn.Tanh())
    report = convscope.chunks(model, torch.randn(2, 40), chunk=10, sample_rate=16000)
    assert report.overall.first is None and report.layers == []
    assert report.stack_context == (0, 0)
    assert "no difference" in str(report)


@pytest.mark.parametrize("kwargs, message", [
    ({"chunk": 0}, "chunks: chunk must be a whole number of input samples >= 1, got 0"),
    ({"chunk": 40}, "chunks.seconds: a chunk of 40 input samples is not shorter than the whole"),
    ({"chunk": 4, "x": torch.randn(2, 2, 40)}, "chunks: x must be (channels, samples)"),
    ({"chunk": 4, "model": "conv"}, "chunks: model must be a torch.nn.Module, got str"),
])
def test_bad_arguments_are_one_line(kwargs, message):
    args = {"model": torch.nn.Conv1d(1, 1, 3, padding=1), "x": torch.randn(1, 40),
            "sample_rate": 16000, **kwargs}
    with pytest.raises(ConvscopeError) as caught:
        convscope.chunks(args.pop("model"), args.pop("x"), **args)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


WAVEFORM_MODEL = '''
from torch import nn


class Upsampler(nn.Module):
    def __init__(self, channels=4):
        super().__init__()
        self.pre = nn.Conv1d(1, channels, 5, padding=2)
        self.up = nn.ConvTranspose1d(channels, 1, 4, stride=2, padding=1)

    def forward(self, x):
        return self.up(self.pre(x).tanh())
'''


def test_cli_debugs_a_users_module(tmp_path):
    (tmp_path / "upsampler.py").write_text(textwrap.dedent(WAVEFORM_MODEL))
    done = run_script("chunks.py", "model=module", "model.target=upsampler.py:Upsampler",
                      f"data.path={REPO / 'data' / 'sample.wav'}", "data.start=2.0",
                      "data.end=2.3", "chunks.seconds=0.1", "plots.dpi=40",
                      "hydra.run.dir=out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    console = done.stdout + done.stderr
    assert "chunk debugger: upsampler.py:Upsampler, 3 chunks of 1600 input samples" in console
    assert "the clicks come mostly from" in console
    files = RunDir(tmp_path / "out")
    doc = json.loads(files.chunks_json.read_text())
    # pre (k5 p2) needs 2 samples either side, up (k4 s2 p1) 1: 3 input samples in all
    assert doc["stack_context"]["left"] == doc["stack_context"]["right"] == 3
    assert doc["overlap_check"]["differing_samples"] == 0
    assert set(doc["culprits"]) == {"pre", "up"}
    assert imread(files.chunk_errors_plot).ndim == 3


@pytest.mark.slow
def test_published_hifigan_v1_and_dac_decoder():
    model, x = hifigan_v1(channels=512, frames=20)
    check_blamed_leaf_and_overlap(model, x, 8, convscope.chunks(model, x, chunk=8,
                                                                sample_rate=MEL_RATE))
    model, x = dac_decoder(channels=1536, latent=1024, frames=10)  # DAC 44 kHz's decoder
    check_blamed_leaf_and_overlap(model, x, 4, convscope.chunks(model, x, chunk=4,
                                                                sample_rate=44100 / 512),
                                  44100 / 512)
    assert np.isfinite(model(x).detach().numpy()).all()


class Recurrent(torch.nn.Module):
    """A conv, then an LSTM over time: its output reads the whole past."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 4, 3, padding=1)
        self.lstm = torch.nn.LSTM(4, 4, batch_first=True)
        self.out = torch.nn.Conv1d(4, 1, 1)

    def forward(self, x):
        y, _ = self.lstm(self.conv(x).transpose(1, 2))
        return self.out(y.transpose(1, 2))


def test_a_model_with_unbounded_context_says_why_it_has_no_overlap():
    torch.manual_seed(0)
    report = convscope.chunks(Recurrent(), torch.randn(1, 60), chunk=20, sample_rate=16000)
    assert report.overall.first is not None and report.stack_context is None
    assert report.no_rule.startswith("the output's context is not finite")
    text = str(report)
    assert "(no context arithmetic: the output's context is not finite" in text
    conv = next(layer for layer in report.layers if layer.key == "conv")
    assert (conv.context.left, conv.context.right) == (1, 1) and conv.error.differing
    assert "not measured (context unknown, and its pieces cannot stand in for its output): lstm" \
        in text and "no finite overlap makes this model exact" in text
