"""convscope.estimate (stack/estimate.py) against what torch really does: MACs against
FlopCounterMode of a real forward, the streamed block's context against a gradient probe, the
one-shot peak against the peak RSS a real forward of the published models adds (measured in a
fresh interpreter from a reset high-water mark), and describe's refusal of a forward that would
not fit, before it runs."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import convscope
from convscope.errors import ConvscopeError
from convscope.stack import estimate as estimate_module
from tests.helpers import REPO
from tests.reference_codecs import DacDecoder, SEANetDecoder
from tests.reference_generators import (
    BIGVGAN_V2_24K,
    HIFIGAN_CONFIGS,
    BigVGANGenerator,
    MELGAN_ARGS,
    HifiGanGenerator,
    MelGanGenerator,
)


def hifigan(channels: int, rates=(8, 8, 2, 2), kernels=(16, 16, 4, 4)) -> nn.Module:
    """HiFi-GAN V1 through its published constructor, narrower (and with other rates)."""
    return HifiGanGenerator({**HIFIGAN_CONFIGS["hifigan_v1"], "upsample_initial_channel": channels,
                             "upsample_rates": list(rates), "upsample_kernel_sizes": list(kernels)})


def real_macs(model: nn.Module, shape) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        model(torch.randn(shape))
    return flops.get_total_flops() // 2


@pytest.mark.parametrize("name, factory, shape", [
    ("hifigan_v1", lambda: hifigan(32), (1, 80, 40)),
    ("dac", lambda: DacDecoder(8, 64), (1, 8, 24)),
    ("encodec", lambda: SEANetDecoder(n_filters=4), (1, 128, 30)),
])
def test_macs_of_the_whole_and_of_a_block_equal_flop_counter_mode(name, factory, shape):
    torch.manual_seed(0)
    model = factory().eval()
    e = convscope.estimate(model, shape, sample_rate=100, block_samples=5)
    assert e.one_shot_macs == real_macs(model, shape) > 0
    block = (*shape[:-1], 5 + (e.left_context or 0) + (e.right_context or 0))
    assert e.block_macs == real_macs(model, block)
    with torch.no_grad():
        out = model(torch.randn(shape))
    longer = model(torch.randn((*shape[:-1], shape[-1] + 4))).shape[-1] - out.shape[-1]
    assert e.output_rate == longer / 4  # every model here upsamples by an integer


def test_the_context_is_the_gradient_probes_reach_and_tight():
    """Every output sample reads only inputs within [now - left, now + right] (now: the input
    sample it sits at), and some output reads each end."""
    torch.manual_seed(0)
    model = hifigan(16, rates=(4, 2), kernels=(8, 4)).double().eval()  # 8 output phases
    e = convscope.estimate(model, (1, 80, 80), sample_rate=22050 / 256)
    rate = e.output_rate
    x = torch.randn(1, 80, 80, dtype=torch.float64, requires_grad=True)
    y = model(x)
    middle = y.shape[-1] // 2 // rate.numerator * rate.numerator  # output phase 0
    lefts, rights = [], []
    for j in range(middle, middle + rate.numerator):  # one output period: every phase
        (grad,) = torch.autograd.grad(y[0, 0, j], x, retain_graph=True)
        read = grad.abs().sum(dim=1)[0].nonzero().flatten()
        now = math.floor(j / rate)
        lefts.append(now - int(read.min()))
        rights.append(int(read.max()) - now)
    assert (max(lefts), max(rights)) == (e.left_context, e.right_context)
    assert e.unbounded_reason is None
    assert e.right_context == convscope.describe(model, x.detach()).latency["lookahead_samples"]


def test_a_recurrent_model_has_no_bounded_context_and_says_where():
    e = convscope.estimate(SEANetDecoder(n_filters=4), (1, 128, 20), sample_rate=75,
                           block_samples=10)
    assert (e.left_context, e.right_context) == (None, None)
    assert e.unbounded_reason == ("recurrent (LSTM) at model.1.lstm: depends on every "
                                  "earlier sample")
    assert e.output_rate == 320 and e.block_macs > 0
    assert "context unbounded: recurrent (LSTM) at model.1.lstm" in e.summary()
    assert e.as_json()["output_rate_fraction"] == "320"


@pytest.mark.parametrize("shape, block", [((1, 80), None), ((1, 80, 0), None),
                                          ("1x80x10", None), ((1, 80, 10), 0)])
def test_bad_arguments_are_one_line(shape, block):
    with pytest.raises(ConvscopeError) as error:
        convscope.estimate(MelGanGenerator(80, 4, 1), shape, sample_rate=100,
                           block_samples=block)
    assert "\n" not in str(error.value) and str(error.value).startswith("estimate: ")


class RaisesOnShortInputs(nn.Module):
    def forward(self, x):
        if x.shape[-1] < 4096:
            raise ValueError(f"needs 4096 samples, got {x.shape[-1]}")
        return x * 2


def test_a_model_that_fails_on_every_analysed_length_is_one_line_naming_it():
    with pytest.raises(ConvscopeError) as error:
        convscope.estimate(RaisesOnShortInputs(), (1, 1, 100_000), sample_rate=16000)
    assert str(error.value) == ("estimate: RaisesOnShortInputs (the model itself) raised "
                                "ValueError: needs 4096 samples, got 2048 on an input of shape "
                                "[1, 1, 2048]")


# The model built and warmed up, the high-water mark reset (Linux's clear_refs), one forward:
# prints the peak RSS it added. The estimate is computed in the test's own process.
FORWARD_PEAK = """
import sys, torch
sys.path.insert(0, sys.argv[1])
from tests.test_estimate import PUBLISHED
factory, shape = PUBLISHED[sys.argv[2]]
torch.manual_seed(0)
model = factory().eval()
x = torch.randn(shape)
with torch.no_grad():
    model(x[..., :8])  # the interpreter's and kernels' one-time memory is not the forward's


def status(key):  # bytes in /proc/self/status
    line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
    return int(line.split()[1]) * 1024


open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS")
with torch.no_grad():
    y = model(x)
print(status("VmHWM") - before)
"""

# the published sizes at a short input: a forward of 100-450 MB
PUBLISHED = {
    "melgan": (lambda: MelGanGenerator(**MELGAN_ARGS), (1, 80, 400)),
    "hifigan_v1": (lambda: HifiGanGenerator(HIFIGAN_CONFIGS["hifigan_v1"]), (1, 80, 400)),
    "dac_decoder": (lambda: DacDecoder(1024, 1536), (1, 1024, 200)),
    "encodec_decoder": (lambda: SEANetDecoder(), (1, 128, 400)),
    "encodec_decoder_no_lstm": (lambda: SEANetDecoder(lstm=0), (1, 128, 400)),
    "hifigan_v3": (lambda: HifiGanGenerator(HIFIGAN_CONFIGS["hifigan_v3"]), (1, 80, 800)),
    "bigvgan_v2_24k": (lambda: BigVGANGenerator(BIGVGAN_V2_24K), (1, 100, 200)),
}


@pytest.mark.parametrize("name", [
    "melgan", *(pytest.param(n, marks=pytest.mark.slow) for n in PUBLISHED if n != "melgan")])
def test_the_one_shot_peak_is_within_2x_of_the_measured_peak_rss(name):
    factory, shape = PUBLISHED[name]
    e = convscope.estimate(factory(), shape, sample_rate=100)
    done = subprocess.run([sys.executable, "-c", FORWARD_PEAK, str(REPO), name],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
    assert done.returncode == 0, done.stderr
    measured = int(done.stdout.split()[-1])
    print(name, "estimate", e.one_shot_bytes, "measured", measured)
    assert measured > 50e6  # the forward dominates the interpreter's noise
    assert measured / 2 <= e.one_shot_bytes <= 2 * measured


def test_describe_refuses_an_example_that_would_not_fit_before_it_runs(monkeypatch):
    model = nn.Sequential(nn.Conv1d(1, 64, 3, padding=1), nn.Conv1d(64, 1, 3, padding=1))
    needed = convscope.estimate(model, (1, 1, 100_000), sample_rate=16000).one_shot_bytes
    calls = []
    model[0].register_forward_pre_hook(lambda *_: calls.append(1))
    assert needed > 64 * 100_000 * 4  # the 64-channel activation at least
    monkeypatch.setattr(estimate_module, "available_memory_bytes", lambda: needed - 1)
    with pytest.raises(ConvscopeError) as error:
        convscope.describe(model, torch.zeros(1, 1, 100_000))
    message = str(error.value)
    assert "\n" not in message and message.startswith("describe: a forward of Sequential on an "
                                                      "input of shape [1, 1, 100000] needs ~")
    assert calls == []  # refused before the forward (the fake one runs no hooks either)
    monkeypatch.setattr(estimate_module, "available_memory_bytes", lambda: needed)
    assert len(convscope.describe(model, torch.zeros(1, 1, 100_000)).rows) == 2
    assert calls == [1]


def test_describe_does_not_estimate_an_example_that_fits_even_at_the_guards_expansion(
        monkeypatch):
    """The guard's fake forward costs about a real one: describe skips it where even
    GUARD_EXPANSION bytes per input byte would fit (a mel of a second of audio)."""
    estimated = []

    def counted(*args, **kwargs):
        estimated.append(args)
        return real_fake_forward(*args, **kwargs)

    real_fake_forward = estimate_module.fake_forward
    monkeypatch.setattr(estimate_module, "fake_forward", counted)
    monkeypatch.setattr(estimate_module, "available_memory_bytes",
                        lambda: 80 * 86 * 4 * estimate_module.GUARD_EXPANSION)
    convscope.describe(MelGanGenerator(80, 4, 1), torch.zeros(1, 80, 86))
    assert estimated == []
    monkeypatch.setattr(estimate_module, "available_memory_bytes",
                        lambda: 80 * 86 * 4 * estimate_module.GUARD_EXPANSION - 1)
    assert len(convscope.describe(MelGanGenerator(80, 4, 1), torch.zeros(1, 80, 86)).rows) > 0
    assert len(estimated) == 1


# describe's peak or a plain forward's (argv[1]), each in a fresh interpreter warmed up by one
# forward: a stack whose weights (weight_norm, 75 MB) outweigh its activations, as a vocoder's
# do on a short mel. (Measured after a describe in the same process, the heap that one kept
# would hide the second's peak.)
DESCRIBE_PEAK = """
import sys, torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm
import convscope
torch.manual_seed(0)
model = nn.Sequential(*(weight_norm(nn.Conv1d(512, 512, 7, padding=3)) for _ in range(10))).eval()
x = torch.randn(1, 512, 2000)


def status(key):
    line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
    return int(line.split()[1]) * 1024


def forward():
    with torch.no_grad():
        model(x)


forward()  # warm-up: kernels
# warm-up: describe's imports (its memory guard's fake tensors too), not this model's heap
convscope.describe(nn.Conv1d(512, 1, 1), x)
call = forward if sys.argv[1] == "forward" else lambda: convscope.describe(model, x)
open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS")
call()
print(status("VmHWM") - before)
"""


def peak_of(what: str) -> int:
    done = subprocess.run([sys.executable, "-c", DESCRIBE_PEAK, what], capture_output=True,
                          text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_describe_peak_memory_is_within_2x_of_a_plain_forwards():
    forward, described = peak_of("forward"), peak_of("describe")
    print("forward", forward, "describe", described)
    assert forward > 20e6  # the activations and im2col columns dominate the noise
    assert described <= 2 * forward  # a cache of every weight_norm weight would add 75 MB
