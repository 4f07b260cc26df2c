"""Stateful chunked streaming (stream.mode=stateful): chunks of any size through per-layer state
give the one-shot forward sample for sample, compute each sample once, and emit each output with
the stack's receptive-field lookahead as latency."""

from __future__ import annotations

import json
import random
from fractions import Fraction

import numpy as np
import pytest
import soundfile
import torch
from torch.utils.flop_counter import FlopCounterMode

from convscope.config.presets import model_preset
from convscope.config.schema import (
    AudioConfig,
    DataConfig,
    LayerConfig,
    ModelConfig,
    RunConfig,
    StreamConfig,
)
from convscope.errors import ConvscopeError
from convscope.pipeline.single import run
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack
from convscope.stack.receptive import receptive_reaches
from convscope.stack.stateful import StatefulStack, stream_stateful
from tests.helpers import REPO
from tests.streams import InOrder, assert_same_outputs, layer_outputs

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


def run_both(specs, length, sizes, channels=1, seed=0, dtype=torch.float32, causal=False):
    """(every top-level layer's one-shot output, the same streamed, (plans, stack, [(inputs
    pushed, outputs emitted) after each chunk])). float64 shows exactness beyond float32's
    rounding, which deep random stacks amplify past 1e-5 when sums are taken in another order."""
    plans = plan_stack(specs, (1, channels, length), causal=causal)
    stack = build_stack(plans, seed).eval().to(dtype)
    x = torch.randn(1, channels, length, generator=torch.Generator().manual_seed(seed),
                    dtype=dtype)
    expected = layer_outputs(stack, x)
    collect = InOrder(len(plans))
    engine = StatefulStack(plans, stack)
    emitted = []

    def chunks():
        at = 0
        for size in sizes:
            yield x[..., at: at + size]
            at += size
            emitted.append((at, collect.starts[-1]))  # runs when the next chunk is asked for: pushed

    stream_stateful(engine, chunks(), collect)
    streamed = collect.joined(x[..., :0])
    return expected, streamed, (plans, stack, emitted)


def assert_equal(expected, streamed, atol=1e-5):
    assert_same_outputs(expected, streamed, atol)


def test_reference_stack_with_odd_chunks_equals_one_shot():
    rng = random.Random(0)
    for length in (1, 2, 7, 301):
        for largest in (1, 3, 17, 400):
            expected, streamed, _ = run_both(REFERENCE, length, chunk_sizes(rng, length, largest))
            assert_equal(expected, streamed)


def conv(rng: random.Random, cin: int, cout: int, transposed: bool, overlap: bool) -> L:
    """A random conv layer; `overlap`: a transposed conv's taps reach its next input's slot."""
    k, s, d = rng.randint(1, 7), rng.randint(1, 4), rng.randint(1, 2)
    groups = 2 if cin % 2 == 0 and cout % 2 == 0 and rng.random() < 0.3 else 1
    common = dict(in_channels=cin, out_channels=cout, kernel_size=k, stride=s, dilation=d,
                  groups=groups)
    if transposed:
        p = rng.randint(0, d * (k - 1))
        op = rng.randint(0, max(s, d) - 1)
        if overlap and d * (k - 1) + 1 + op - p < s:
            common["kernel_size"] = k = s + p  # span >= s + p: every output slot gets a tap
            common["dilation"] = d = 1
        return L(type=T, padding=p, output_padding=op, **common)
    padding = rng.choice([rng.randint(0, 4), "same", "valid"])
    if padding == "same":
        common["stride"] = 1
    return L(type="Conv1d", padding=padding, **common)


def length_keeping(rng: random.Random, channels: int) -> list[L]:
    """A block's sub-stack that keeps the length: a 'same' conv, a pointwise layer, or an
    up-then-down pair whose paddings cancel (output lags the input differently per branch)."""
    kind = rng.choice(["same", "pointwise", "updown"])
    if kind == "same":
        k, d = rng.choice([1, 3, 5]), rng.randint(1, 3)
        return [L(type="Conv1d", in_channels=channels, out_channels=channels, kernel_size=k,
                  dilation=d, padding=d * (k - 1) // 2)]
    if kind == "pointwise":
        return [rng.choice([L(type="LeakyReLU", negative_slope=0.1), L(type="Hardtanh"),
                            L(type="Snake"), L(type="SnakeBeta")])]
    s = rng.randint(1, 3)
    k = 2 * s + rng.choice([0, 2])
    p = (k - s) // 2
    return [L(type=T, in_channels=channels, out_channels=channels, kernel_size=k, stride=s,
              padding=p), L(type="LeakyReLU", negative_slope=0.2),
            L(type="Conv1d", in_channels=channels, out_channels=channels, kernel_size=k, stride=s,
              padding=p)]


def random_stack(rng: random.Random, channels: int, exact_latency: bool = False) -> list[L]:
    """Random convs, pointwise layers, nearest (and linear) Upsample, Residual and Parallel."""
    specs = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["Conv1d", T, T, "pointwise", "Upsample", "Residual", "Parallel"])
        if kind in ("Conv1d", T):
            out = rng.choice([1, 2, 4])
            specs.append(conv(rng, channels, out, kind == T, overlap=exact_latency))
            channels = out
        elif kind == "pointwise":
            specs.append(rng.choice([L(type="LeakyReLU", negative_slope=0.2), L(type="Hardtanh"),
                            L(type="Snake", alpha=0.5), L(type="SnakeBeta", logscale=True)]))
        elif kind == "Upsample":
            modes = ["nearest", "nearest-exact"] + ([] if exact_latency else ["linear"])
            specs.append(L(type="Upsample", scale_factor=rng.randint(1, 3),
                           mode=rng.choice(modes)))
        elif kind == "Residual":
            specs.append(L(type="Residual", layers=length_keeping(rng, channels)))
        else:
            branches = [L(type="Sequential", layers=length_keeping(rng, channels))
                        for _ in range(rng.randint(2, 3))]
            specs.append(L(type="Parallel", reduce=rng.choice(["mean", "sum"]), layers=branches))
    return specs


def test_random_stacks_with_random_chunks_equal_one_shot():
    rng = random.Random(11)
    checked = 0
    while checked < 60:
        channels, length = rng.choice([1, 2]), rng.randint(1, 120)
        specs = random_stack(rng, channels)
        try:
            plan_stack(specs, (1, channels, length))
        except ConvscopeError:  # an invalid random stack (too short, bad padding): draw another
            continue
        expected, streamed, _ = run_both(specs, length, chunk_sizes(rng, length, 40), channels,
                                         seed=checked, dtype=torch.float64)
        assert_equal(expected, streamed, atol=1e-10)
        checked += 1


def emission_inputs(emitted: list[tuple[int, int]], total: int) -> list[int]:
    """For each output sample, how many input samples had been pushed when it came out (None:
    at the flush)."""
    when, done = [], 0
    for pushed, count in emitted:
        when += [pushed] * (count - done)
        done = count
    return when + [None] * (total - done)


def test_each_output_comes_out_once_its_last_input_arrived_and_latency_is_the_lookahead():
    """The oracle is stack.receptive's Reach: output j depends on stack inputs up to
    reach.at(j)[1]; emitted in order, j comes out with input max(last(j') for j' <= j). The worst
    delay behind the output's own time is then the reported lookahead."""
    rng = random.Random(3)
    checked = lagging = 0
    while checked < 25:
        channels, length = rng.choice([1, 2]), rng.randint(8, 80)
        specs = random_stack(rng, channels, exact_latency=True)
        try:
            plan_stack(specs, (1, channels, length))
        except ConvscopeError:
            continue
        expected, _, (plans, stack, emitted) = run_both(specs, length, [1] * length, channels,
                                                        seed=checked, dtype=torch.float64)
        reach = receptive_reaches(stack, (1, channels, length))[""][0]
        total = expected[-1].shape[-1]
        when = emission_inputs(emitted, total)
        rate = Fraction(reach.period, reach.shift)
        last, delays = -1, []
        for j in range(total):
            span = reach.at(j)
            last = max(last, -1 if span is None else span[1])
            if last >= length:  # reads right padding: only the flush can give it
                assert when[j] is None, (specs, j)
                continue
            assert when[j] == max(last, 0) + 1, (plans, j, when[j], last)
            delays.append(when[j] - 1 - int(j / rate))
        if delays and max(delays) > 0:
            assert max(delays) == reach.lookahead(), specs
            lagging += 1
        checked += 1
    assert lagging >= 5  # the draw holds non-causal stacks, not only lookahead-0 ones


def test_each_sample_is_computed_once():
    """torch's FlopCounterMode over the chunked run counts what one one-shot forward counts:
    no chunk recomputes an earlier sample's context."""
    rng = random.Random(7)
    specs = REFERENCE + [L(type="Residual", layers=length_keeping(random.Random(2), 3)),
                         L(type="Conv1d", in_channels=3, out_channels=2, kernel_size=5, stride=3,
                           dilation=2, padding=4)]
    length = 211
    plans = plan_stack(specs, (1, 1, length))
    stack = build_stack(plans, 0).eval()
    x = torch.randn(1, 1, length)
    with FlopCounterMode(display=False) as one_shot, torch.no_grad():
        stack(x)
    sizes = chunk_sizes(rng, length, 9)
    chunks = torch.split(x, sizes, dim=-1)
    with FlopCounterMode(display=False) as chunked:
        stream_stateful(StatefulStack(plans, stack), chunks, lambda *_: None)
    assert len(sizes) > 40 and chunked.get_total_flops() == one_shot.get_total_flops() > 0


def test_causal_hifigan_v2_streams_with_odd_chunks_and_no_latency():
    """model=hifigan_v2 model.causal=true, mel frames pushed 1, 2, 1, 3, 2 at a time."""
    specs = model_preset("hifigan_v2").layers
    frames, sizes = 9, [1, 2, 1, 3, 2]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops: on a shared machine two threads spin-wait
    try:
        expected, streamed, (_, stack, emitted) = run_both(specs, frames, sizes, channels=80,
                                                           causal=True)
    finally:
        torch.set_num_threads(threads)
    assert_equal(expected, streamed)
    up = Fraction(expected[-1].shape[-1], frames)
    assert up == 256
    # causal: everything up to the input pushed so far is out at once, nothing waits
    assert all(count == pushed * up for pushed, count in emitted), emitted
    assert receptive_reaches(stack, (1, 80, frames))[""][0].lookahead() == 0


def test_layer_without_a_cell_is_a_one_line_error():
    specs = [L(type="Conv1d", in_channels=1, out_channels=2, kernel_size=3, padding=1),
             L(type="Residual", layers=[L(type="AntiAliasedActivation", activation="Snake")])]
    plans = plan_stack(specs, (1, 1, 50))
    with pytest.raises(ConvscopeError) as error:
        StatefulStack(plans, build_stack(plans, 0))
    message = str(error.value)
    assert "\n" not in message and message.startswith("model.layers.1.layers.0:")
    assert "stream.mode" in message
    reflect = [L(type="Conv1d", in_channels=1, out_channels=1, kernel_size=3, padding=1,
                 padding_mode="reflect")]
    plans = plan_stack(reflect, (1, 1, 50))
    with pytest.raises(ConvscopeError, match=r"^model\.layers\.0: Conv1d padding_mode='reflect'"):
        StatefulStack(plans, build_stack(plans, 0))


def test_stateful_pipeline_run_writes_the_one_shot_wavs(tmp_path, caplog):
    """stream.enabled=true stream.mode=stateful on the seed stack, resampled input (22.05 to
    16 kHz) in chunks of 0.0137 s: the output WAVs equal the one-shot run's samples."""
    data = DataConfig(path="data/sample.wav", start=0.5, end=1.1)
    runs = {}
    for name, stream in (("stateful", StreamConfig(enabled="true", block_seconds=0.0137,
                                                   mode="stateful")),
                         ("one_shot", StreamConfig(enabled="false"))):
        cfg = RunConfig(data=data, model=ModelConfig(layers=REFERENCE), report=False,
                        stream=stream, audio=AudioConfig(subtype="FLOAT"))
        cfg.plots.enabled = False
        with caplog.at_level("INFO", logger="convscope"):
            runs[name] = run(cfg, tmp_path / name, base_dir=REPO)
    one_shot = runs["one_shot"]
    gain = one_shot.shapes["audio"]["gain"]
    for channel, expected in enumerate(one_shot.traces[-1].output[0]):
        got, rate = soundfile.read(str(tmp_path / "stateful/audio" / f"layer1_ch{channel}.wav"),
                                   dtype="float32")
        assert rate == 32000 and got.shape == expected.shape
        np.testing.assert_allclose(got * gain, expected * gain, atol=1e-5)
    stream = json.loads((tmp_path / "stateful/shapes.json").read_text())["stream"]
    # soxr hands the resampled chunks on in its own, uneven sizes: many, none aligned to a stride
    assert stream["mode"] == "stateful" and stream["blocks"] > 10
    assert stream["latency_samples"] == one_shot.shapes["latency"]["lookahead_samples"]
    assert "ms mean" in caplog.text and "per chunk" in caplog.text
