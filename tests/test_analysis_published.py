"""describe() on the published vocoders and codec decoders (tests/reference_generators.py and
tests/reference_codecs.py, written in the published code's structure): HiFi-GAN V1-V3, MelGAN,
BigVGAN v2, the DAC decoder (TorchScript Snake1d, residual crop), EnCodec's SEANet decoder with
and without its LSTM.

MACs are checked against FlopCounterMode. The oracle of the dependencies is a gradient probe
written here: the model in float64, one output sample of a row backpropagated to the model
input, the input samples with a nonzero gradient are what it reads.
Every checked row's reach at several output indices (every output phase for the last row) must
equal the probe's span, the rows' lengths must be torch's, and every row must carry a receptive
field or the reason it has none. Channel widths are reduced through the published constructors'
own arguments (the receptive field does not depend on them); the full sizes run under -m slow.
"""

from __future__ import annotations

import copy

import pytest
import torch

import convscope
from convscope.stack.analysis import leaves, trace_forward
from convscope.stack.trace import torch_threads
from tests.reference_codecs import DacDecoder, SEANetDecoder
from tests.reference_generators import (
    BIGVGAN_V2_24K,
    HIFIGAN_CONFIGS,
    BigVGANGenerator,
    HifiGanGenerator,
    MelGanGenerator,
)

RECURRENT = "recurrent (LSTM): depends on every earlier sample"
BATCH = 8  # output indices one backward pass answers
LAST_ROW_PHASES = 64  # the last row is checked at every output phase, up to this many


def hifigan(version: str, channels: int):
    return HifiGanGenerator({**HIFIGAN_CONFIGS[version], "upsample_initial_channel": channels})


def bigvgan(channels: int, stages: int = 6):
    """BigVGAN v2 24 kHz; with fewer stages, its first upsampling stages only (the published
    constructor takes the rates from its config)."""
    return BigVGANGenerator({**BIGVGAN_V2_24K, "upsample_initial_channel": channels,
                             "upsample_rates": BIGVGAN_V2_24K["upsample_rates"][:stages],
                             "upsample_kernel_sizes":
                                 BIGVGAN_V2_24K["upsample_kernel_sizes"][:stages]})


# name: (model factory, example shape, every how many rows the probe checks in the default run)
# The example lengths leave the middle output's receptive field inside the input (asserted).
SMALL = {
    "hifigan_v1": (lambda: hifigan("hifigan_v1", 32), (1, 80, 40), 1),
    "hifigan_v2": (lambda: hifigan("hifigan_v2", 32), (1, 80, 40), 1),
    "hifigan_v3": (lambda: hifigan("hifigan_v3", 32), (1, 80, 40), 1),
    "melgan": (lambda: MelGanGenerator(80, 4, 3), (1, 80, 24), 1),
    "bigvgan_v2_24k_2_stages": (lambda: bigvgan(16, stages=2), (1, 100, 128), 4),
    "dac": (lambda: DacDecoder(8, 64), (1, 8, 32), 1),
    "encodec": (lambda: SEANetDecoder(dimension=8, n_filters=4, lstm=0), (1, 8, 24), 1),
}


def build(name: str):
    factory, shape, every = SMALL[name]
    torch.manual_seed(0)
    return factory().eval(), torch.randn(shape), every


class GradientProbe:
    """The leaf calls' outputs of a float64 copy of `model` on `x` repeated `batch` times, with
    what each output index reads of the input found by backpropagation: batch element b asks
    for one output index, so one backward answers `batch` indices (eval mode: the batch
    elements are independent)."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, batch: int = BATCH):
        self.model = copy.deepcopy(model).double().eval()
        self.batch = batch
        self.x = x.double().expand(batch, *x.shape[1:]).clone().requires_grad_()
        self.names, self.outputs = [], []
        names = {id(m): name for name, m in leaves(self.model)}
        handles = [m.register_forward_hook(self._keep(names[id(m)]))
                   for m in self.model.modules() if id(m) in names]
        self.output = self.model(self.x)
        for handle in handles:
            handle.remove()

    def _keep(self, name: str):
        def hook(_module, _args, output):
            self.names.append(name)
            self.outputs.append(output[0] if isinstance(output, tuple) else output)
        return hook

    def spans(self, call: int, time_axis: int, indices: list[int]) -> dict[int, tuple]:
        """{j: (first, last) input index read by output j along time}; None: reads nothing."""
        out, found = self.outputs[call], {}
        batch_axis = 1 if time_axis == 0 else 0  # an LSTM's output is (time, batch, channels)
        for start in range(0, len(indices), self.batch):
            chunk = indices[start:start + self.batch]
            one_hots = torch.zeros_like(out)
            for b, j in enumerate(chunk):
                one_hots.select(batch_axis, b).select(time_axis - (batch_axis < time_axis),
                                                      j).fill_(1.0)
            (grad,) = torch.autograd.grad(out, self.x, one_hots, retain_graph=True)
            for b, j in enumerate(chunk):
                nonzero = (grad[b].abs().sum(dim=0) != 0).nonzero().flatten()
                found[j] = (int(nonzero[0]), int(nonzero[-1])) if len(nonzero) else None
        return found


@pytest.fixture(autouse=True)
def one_thread():
    """Many small float64 backward passes: a second thread only waits on a shared machine
    (measured: MelGAN's probe 4.4 s on one thread, 29.5 s on two under load)."""
    with torch_threads(1):
        yield


def assert_rows_match_the_probe(model, x, every: int = 1):
    trace = trace_forward(model, x)
    probe = GradientProbe(model, x)
    assert [c.name for c in trace.calls] == probe.names
    length = x.shape[-1]
    checked = sorted({*range(0, len(trace.calls), every), len(trace.calls) - 1})
    for index in checked:
        call = trace.calls[index]
        assert call.flow.finite, (call.name, call.flow.reason)
        reach, axis = call.flow.reach, call.flow.time_axis
        middle = probe.outputs[index].shape[axis] // 2
        last = index == len(trace.calls) - 1
        if last:  # every phase (evenly spread over the period when it has more)
            phases = {p * reach.period // LAST_ROW_PHASES for p in range(LAST_ROW_PHASES)}
        else:
            phases = {0, 1, reach.period // 2, reach.period - 1}
        indices = sorted({middle + p for p in phases})
        for j, span in probe.spans(index, axis, indices).items():
            expected = reach.at(j)
            if expected is None:  # a transposed conv's phase no tap lands on: bias only
                assert span is None, (call.name, j)
                continue
            assert 0 < expected[0] and expected[1] < length - 1, \
                f"{call.name}: example too short to see output {j}'s whole reach {expected}"
            assert span == expected, (call.name, j)
    return trace


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_row_reads_what_the_gradient_probe_says(name):
    model, x, every = build(name)
    trace = assert_rows_match_the_probe(model, x, every)
    d = convscope.describe(model, x, sample_rate=100)
    from torch.utils.flop_counter import FlopCounterMode  # lazy: it imports torch._dynamo

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        expected = model(x)
    # every multiply is in some row: BigVGAN's anti-aliasing filters are functional convs
    assert sum(r.macs for r in d.rows) == counter.get_total_flops() // 2
    assert d.rows[-1].output_shape == list(trace.output.shape) == list(expected.shape)
    assert all(r.receptive_field is not None and r.lookahead is not None for r in d.rows)
    assert d.latency == {"lookahead_samples": d.rows[-1].lookahead,
                         "lookahead_ms": d.rows[-1].lookahead / 100 * 1000}
    # the only leaves no rule explains are DAC's Snake1d (a TorchScript function): probed
    assert {type(dict(model.named_modules())[n]).__name__ for n in d.probed} \
        <= {"Snake1d"}
    assert bool(d.probed) == (name == "dac")


def test_the_hifigan_v1_lookahead_is_the_presets():
    """The published V1's last row reads 27 mel frames, 13 of them ahead: 150.9 ms at
    22050/256 Hz, the lookahead the hifigan_v1 preset's config stack computes by arithmetic."""
    model, x, _ = build("hifigan_v1")
    d = convscope.describe(model, x, sample_rate="22050/256")
    assert (d.rows[-1].receptive_field, d.rows[-1].lookahead) == (27, 13)
    assert round(d.latency["lookahead_ms"], 1) == 150.9


def test_rows_after_an_lstm_say_why_they_have_no_receptive_field():
    torch.manual_seed(0)
    model = SEANetDecoder(dimension=8, n_filters=4, lstm=2).eval()
    x = torch.randn(1, 8, 24)
    d = convscope.describe(model, x, sample_rate=75)
    names = [r.name for r in d.rows]
    at = names.index("model.1.lstm")
    assert all(r.receptive_field is not None for r in d.rows[:at])
    assert all(r.receptive_field is None and r.receptive_reason == RECURRENT
               for r in d.rows[at:])
    assert d.latency is None
    assert RECURRENT in str(d) and d.to_dict()["layers"][-1]["receptive_reason"] == RECURRENT
    # and it is true: the last output's middle sample reads the very first input frame
    probe = GradientProbe(model, x)
    middle = probe.outputs[-1].shape[-1] // 2
    assert probe.spans(len(probe.outputs) - 1, 2, [middle])[middle][0] == 0


SLOW = {**SMALL, "bigvgan_v2_24k": (lambda: bigvgan(64), (1, 100, 96), 1)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW))
def test_every_row_of_the_small_models_matches_the_probe(name):
    factory, shape, _ = SLOW[name]
    torch.manual_seed(0)
    assert_rows_match_the_probe(factory().eval(), torch.randn(shape), every=1)


FULL = {
    "hifigan_v1": (lambda: hifigan("hifigan_v1", 512), (1, 80, 40)),
    "bigvgan_v2_24k": (lambda: bigvgan(1536), (1, 100, 96)),
    "dac": (lambda: DacDecoder(1024, 1536), (1, 1024, 32)),
    "encodec": (lambda: SEANetDecoder(lstm=0), (1, 128, 24)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FULL))
def test_the_published_sizes_read_what_the_reduced_widths_read(name):
    """Width does not move a receptive field: the published sizes' rows equal the reduced
    models' row by row (themselves checked against the probe), and every one is filled."""
    factory, shape = FULL[name]
    torch.manual_seed(0)
    full = convscope.describe(factory().eval(), torch.randn(shape)).rows
    small_factory, small_shape, _ = SLOW[name]
    small = convscope.describe(small_factory().eval(), torch.randn(small_shape)).rows
    assert [(r.name, r.receptive_field, r.lookahead) for r in full] \
        == [(r.name, r.receptive_field, r.lookahead) for r in small]
    assert all(r.receptive_field is not None for r in full)
