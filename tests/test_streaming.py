"""Streaming: the block-wise forward equals the one-shot forward everywhere, edges included;
streamed runs write the same audio, shapes and plots data in bounded pieces."""

from __future__ import annotations

import json
import random

import librosa
import numpy as np
import pytest
import soundfile
import torch
from omegaconf import OmegaConf

from convscope.audio.blockio import audio_blocks, segment_span
from convscope.config.convert import to_run_config
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
from convscope.plots.envelopes import EnvelopeAccumulator, minmax_envelope
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack
from convscope.stack.streaming import layer_rules, stream_forward, unsupported_reason
from tests.helpers import REPO
from tests.streams import InOrder, assert_same_outputs, layer_outputs

T = "ConvTranspose1d"
REFERENCE = [
    LayerConfig(type=T, in_channels=1, out_channels=2, kernel_size=3, stride=1, padding=1),
    LayerConfig(type=T, in_channels=2, out_channels=3, kernel_size=5, stride=2, padding=2,
                output_padding=1)]


def preset(name: str) -> list[LayerConfig]:
    model = OmegaConf.load(REPO / "configs" / "model" / f"{name}.yaml")
    return [LayerConfig(**layer) for layer in OmegaConf.to_container(model.layers)]


def one_shot_and_streamed(specs, length, channels=1, block=37, input_block=50, seed=0):
    """Every layer's full output, one-shot and streamed (input fed in input_block pieces)."""
    plans = plan_stack(specs, (1, channels, length))
    stack = build_stack(plans, seed)
    x = torch.randn(1, channels, length, generator=torch.Generator().manual_seed(seed))
    collect = InOrder(len(plans))
    blocks = (x[..., i: i + input_block] for i in range(0, length, input_block))
    stream_forward(layer_rules(plans, stack), blocks, block, collect)
    return layer_outputs(stack, x), [torch.cat(p, dim=-1) for p in collect.pieces]


def assert_equal_streams(expected, streamed):
    assert_same_outputs(expected, streamed)


@pytest.mark.parametrize("length,block", [(1000, 64), (16001, 3200), (777, 1), (5, 1000)])
def test_reference_stack_streams_exactly(length, block):
    assert_equal_streams(*one_shot_and_streamed(REFERENCE, length, block=block))


@pytest.mark.parametrize("name", ["encoder_decoder", "seed_example", "hifigan_style",
                                  "resize_conv"])
def test_presets_stream_exactly(name):
    assert_equal_streams(*one_shot_and_streamed(preset(name), 4003, block=333, input_block=1000))


def random_stack(rng: random.Random, channels: int) -> list[LayerConfig]:
    specs = []
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["Conv1d", T, T, "LeakyReLU", "Upsample"])
        if kind == "LeakyReLU":
            specs.append(LayerConfig(type=kind, negative_slope=0.2))
            continue
        if kind == "Upsample":
            specs.append(LayerConfig(type=kind, scale_factor=rng.randint(1, 3),
                                     mode=rng.choice(["nearest", "linear", "nearest-exact"])))
            continue
        k, s, d = rng.randint(1, 7), rng.randint(1, 4), rng.randint(1, 3)
        out = rng.choice([1, 2, 4])
        groups = 2 if channels % 2 == 0 and out % 2 == 0 and rng.random() < 0.3 else 1
        common = dict(in_channels=channels, out_channels=out, kernel_size=k, stride=s,
                      dilation=d, groups=groups)
        if kind == T:
            specs.append(LayerConfig(type=T, padding=rng.randint(0, d * (k - 1)),
                                     output_padding=rng.randint(0, max(s, d) - 1), **common))
        else:
            padding = rng.choice([rng.randint(0, 4), "same", "valid"])
            if padding == "same":
                common["stride"] = 1
            specs.append(LayerConfig(type="Conv1d", padding=padding, **common,
                                     padding_mode=rng.choice(["zeros", "reflect", "replicate"])))
        channels = out
    return specs


def test_random_stacks_with_dilation_and_output_padding_stream_exactly():
    rng = random.Random(5)
    checked = 0
    while checked < 100:
        channels = rng.choice([1, 2])
        specs, length = random_stack(rng, channels), rng.randint(20, 300)
        try:
            plan_stack(specs, (1, channels, length))
            result = one_shot_and_streamed(specs, length, channels, block=rng.randint(3, 50),
                                           input_block=rng.randint(1, 70), seed=checked)
        except (ConvscopeError, RuntimeError):  # an invalid random stack: draw another
            continue
        assert_equal_streams(*result)
        checked += 1


def test_circular_padding_is_reported_as_not_streamable():
    specs = [LayerConfig(type="Conv1d", in_channels=1, out_channels=1, kernel_size=3, padding=1,
                         padding_mode="circular")]
    reason = unsupported_reason(plan_stack(specs, (1, 1, 100)))
    assert "model.layers.0.padding_mode" in reason


def test_envelope_accumulator_equals_minmax_envelope():
    rng = np.random.default_rng(0)
    for length, max_bins in [(10_007, 100), (150, 100), (1_000, 333)]:
        x = rng.standard_normal((2, length)).astype(np.float32)
        acc = EnvelopeAccumulator(2, length, 8000.0, max_bins)
        start = 0
        while start < length:
            n = int(rng.integers(1, 900))
            acc.add(start, x[:, start: start + n])
            start += n
        for channel, env in enumerate(acc.envelopes()):
            expected = minmax_envelope(x[channel], 8000.0, max_bins)
            np.testing.assert_array_equal(env.low, expected.low)
            np.testing.assert_array_equal(env.high, expected.high)
            np.testing.assert_allclose(env.times, expected.times)
            assert env.duration == expected.duration


@pytest.mark.parametrize("mono", [True, False])
def test_block_reader_matches_librosa_load(make_wav, mono):
    rng = np.random.default_rng(1)
    path = make_wav("stereo.wav", sr=22050, data=0.3 * rng.standard_normal((22050 * 3 + 17, 2)),
                    subtype="FLOAT")
    cfg = DataConfig(path=str(path), sr=16000, start=0.37, end=2.9, mono=mono)
    expected, _ = librosa.load(str(path), sr=16000, mono=mono, offset=0.37, duration=2.9 - 0.37,
                               dtype=np.float32)
    span = segment_span(path, cfg, cfg.end)
    got = np.concatenate(list(audio_blocks(span, block_frames=4000)), axis=-1)
    np.testing.assert_array_equal(got, np.atleast_2d(expected))
    assert span.shape == (1, 1 if mono else 2, expected.shape[-1])


def streamed_and_one_shot_runs(tmp_path, data: DataConfig, layers, block_seconds=0.07,
                               plots=True):
    runs = {}
    for mode in ("true", "false"):
        cfg = RunConfig(data=data, model=ModelConfig(layers=layers), report=False,
                        stream=StreamConfig(enabled=mode, block_seconds=block_seconds),
                        audio=AudioConfig(subtype="FLOAT"))
        cfg.plots.enabled = plots
        runs[mode] = run(cfg, tmp_path / mode, base_dir=REPO)
    return runs["true"], runs["false"]


def test_streamed_run_writes_what_the_one_shot_run_computes(tmp_path):
    data = DataConfig(path="data/sample.wav", start=0.5, end=2.2)  # 22.05 kHz: resampled
    streamed, one_shot = streamed_and_one_shot_runs(tmp_path, data, REFERENCE)
    assert streamed.shapes["output"] == one_shot.shapes["output"]
    assert streamed.shapes["input"] == one_shot.shapes["input"]
    assert streamed.shapes["layers"] == one_shot.shapes["layers"]
    assert streamed.shapes["audio"]["subtype"] == "FLOAT" and streamed.shapes["audio"]["gain"] == 1
    gain = one_shot.shapes["audio"]["gain"]
    for channel, expected in enumerate(one_shot.traces[-1].output[0]):
        got, rate = soundfile.read(str(tmp_path / "true/audio" / f"layer1_ch{channel}.wav"),
                                   dtype="float32")
        assert rate == 32000
        np.testing.assert_allclose(got * gain, expected * gain, atol=1e-5)
    got, _ = soundfile.read(str(tmp_path / "true/audio/input.wav"), dtype="float32")
    np.testing.assert_array_equal(got, one_shot.segment.samples[0])
    saved = json.loads((tmp_path / "true/shapes.json").read_text())
    assert saved["stream"]["blocks"] == int(np.ceil(54400 / round(0.07 * 32000)))
    assert sorted(p.name for p in (tmp_path / "true/plots").iterdir()) == sorted(
        p.name for p in (tmp_path / "false/plots").iterdir())
    # the plots window (10 s) holds the whole 1.7 s segment, so the metrics are the same
    assert saved["stream"]["window_seconds"] == [0.0, one_shot.segment.samples.shape[-1] /
                                                 one_shot.segment.sample_rate]
    streamed_metrics, one_shot_metrics = (json.loads((tmp_path / mode / "metrics.json").read_text())
                                          for mode in ("true", "false"))
    assert streamed_metrics == pytest.approx(one_shot_metrics, abs=2e-3)


def test_streamed_encoder_decoder_on_stereo_matches_one_shot(tmp_path, make_wav):
    rng = np.random.default_rng(2)
    path = make_wav("st.wav", sr=16000, data=0.2 * rng.standard_normal((16000 * 2 + 5, 2)))
    layers = preset("encoder_decoder")
    layers[0].in_channels = 2
    data = DataConfig(path=str(path), start=0.0, end=None, mono=False)
    streamed, one_shot = streamed_and_one_shot_runs(tmp_path, data, layers, block_seconds=0.3,
                                                    plots=False)
    assert streamed.shapes["input"]["shape"] == [1, 2, 32005]
    expected = one_shot.traces[-1].output[0, 0]
    got, _ = soundfile.read(str(tmp_path / "true/audio/layer7_ch0.wav"), dtype="float32")
    gain = one_shot.shapes["audio"]["gain"]
    np.testing.assert_allclose(got * gain, expected * gain, atol=1e-5)
    got, _ = soundfile.read(str(tmp_path / "true/audio/input.wav"), dtype="float32")
    assert got.shape == (32005, 2)


def test_auto_streams_only_segments_longer_than_the_threshold(tmp_path, make_wav):
    path = make_wav("long.wav", seconds=3.0, sr=8000)
    for seconds, streams in [(2.0, False), (3.0, True)]:
        cfg = RunConfig(data=DataConfig(path=str(path), sr=8000, start=0.0, end=seconds),
                        model=ModelConfig(layers=REFERENCE), report=False,
                        stream=StreamConfig(enabled="auto", auto_seconds=2.5))
        cfg.plots.enabled = False
        result = run(cfg, tmp_path / str(seconds), base_dir=REPO)
        assert ("stream" in result.shapes) == streams


def test_non_finite_input_stops_a_streamed_run_without_leaving_wavs(tmp_path, make_wav):
    data = np.zeros(8000 * 3, dtype=np.float32)
    data[8000 * 2 + 100] = np.nan
    path = make_wav("nan.wav", sr=8000, data=data, subtype="FLOAT")
    cfg = RunConfig(data=DataConfig(path=str(path), sr=8000, start=0.0, end=None),
                    model=ModelConfig(layers=REFERENCE), report=False,
                    stream=StreamConfig(enabled="true", block_seconds=0.5))
    with pytest.raises(ConvscopeError, match=r"non-finite .* first at 2\.0125"):
        run(cfg, tmp_path / "out", base_dir=REPO)
    assert not list((tmp_path / "out").rglob("*.wav"))
    assert not (tmp_path / "out/shapes.json").exists()


def test_circular_padding_falls_back_to_one_shot(tmp_path, caplog):
    layers = [LayerConfig(type="Conv1d", in_channels=1, out_channels=1, kernel_size=3, padding=1,
                          padding_mode="circular")]
    cfg = RunConfig(model=ModelConfig(layers=layers), report=False,
                    stream=StreamConfig(enabled="true"))
    cfg.plots.enabled = False
    with caplog.at_level("WARNING", logger="convscope"):
        result = run(cfg, tmp_path, base_dir=REPO)
    assert "stream" not in result.shapes
    assert "circular" in caplog.text


@pytest.mark.parametrize("key,value,message", [
    ("enabled", "sometimes", "stream.enabled must be one of auto, true, false"),
    ("block_seconds", 0, "stream.block_seconds must be a positive"),
    ("subtype", "MP3ISH", "stream.subtype must be a WAV subtype"),
    ("threads", -1, "stream.threads must be >= 0"),
])
def test_bad_stream_settings_name_the_key(key, value, message):
    with pytest.raises(ConvscopeError, match=message):
        to_run_config({"model": {"layers": [{"type": "Tanh"}]}, "stream": {key: value}})


def test_yaml_booleans_are_accepted_for_stream_enabled():
    cfg = to_run_config({"model": {"layers": [{"type": "Tanh"}]}, "stream": {"enabled": True}})
    assert cfg.stream.enabled == "true"


def test_auto_device_picks_cuda_exactly_when_it_is_available():
    from convscope.stack.trace import pick_device

    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch.cuda.is_available() is False")
def test_cuda_runs_match_cpu_one_shot_and_streamed(tmp_path):
    data = DataConfig(path="data/sample.wav", start=0.5, end=2.2)
    results = {}
    for device in ("cpu", "cuda"):
        for mode in ("true", "false"):
            cfg = RunConfig(data=data, model=ModelConfig(layers=preset("encoder_decoder")),
                            device=device, report=False,
                            stream=StreamConfig(enabled=mode, block_seconds=0.1),
                            audio=AudioConfig(subtype="FLOAT", peak=1.0))  # Tanh: gain 1
            cfg.plots.enabled = False
            run(cfg, tmp_path / f"{device}_{mode}", base_dir=REPO)
            results[device, mode], _ = soundfile.read(
                str(tmp_path / f"{device}_{mode}/audio/layer7_ch0.wav"), dtype="float32")
    saved = json.loads((tmp_path / "cuda_true/shapes.json").read_text())
    assert saved["stream"]["device"].startswith("cuda")
    for key, samples in results.items():
        np.testing.assert_allclose(samples, results["cpu", "false"], atol=1e-4, err_msg=str(key))


def test_float_wav_writer_round_trips_and_leaves_nothing_on_error(tmp_path):
    from convscope.audio.blockio import WavWriters

    block = np.random.default_rng(4).standard_normal((2, 1000)).astype(np.float32)
    with WavWriters([tmp_path / "st.wav"], 16000, "FLOAT", 2000, channels=2) as writers:
        writers.write(block)
        writers.write(block[:, :7])
    info = soundfile.info(str(tmp_path / "st.wav"))
    assert (info.subtype, info.channels, info.frames, info.samplerate) == ("FLOAT", 2, 1007, 16000)
    data, _ = soundfile.read(str(tmp_path / "st.wav"), dtype="float32")
    np.testing.assert_array_equal(data.T, np.concatenate([block, block[:, :7]], axis=1))
    with pytest.raises(RuntimeError):
        with WavWriters([tmp_path / "a.wav", tmp_path / "b.wav"], 8000, "FLOAT", 10) as writers:
            writers.write(block)
            raise RuntimeError("stopped half way")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["st.wav"]


def test_streamed_wide_last_layer_evaluates_the_configured_channel(tmp_path):
    layers = [LayerConfig(type=T, in_channels=1, out_channels=6, kernel_size=4, stride=2,
                          padding=1)]
    results = {}
    for mode in ("true", "false"):
        cfg = RunConfig(data=DataConfig(path="data/sample.wav", start=1.0, end=2.5),
                        model=ModelConfig(layers=layers), report=False,
                        stream=StreamConfig(enabled=mode, block_seconds=0.2))
        cfg.evaluate.channel = 5
        cfg.plots.max_channels = 2
        run(cfg, tmp_path / mode, base_dir=REPO)
        results[mode] = json.loads((tmp_path / mode / "metrics.json").read_text())
    assert results["true"]["channel"] == 5
    assert results["true"] == pytest.approx(results["false"], abs=2e-3)
    assert (tmp_path / "true/plots/spectrogram.png").exists()
