"""Feature inputs (data.features=log_mel) streamed block by block: the pre-flight estimate of the
one-shot run against torch's own trace, the choice and refusals it drives, and the streamed run
against the one-shot forward of the same frames (to 1e-5), with its files."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile
import torch

import convscope
from convscope.config.checks import check_values
from convscope.config.schema import DataConfig, LayerConfig, LimitsConfig, ModelConfig, RunConfig
from convscope.audio.features import FeatureSettings, feature_bytes
from convscope.audio.segment import load_segment
from convscope.errors import ConvscopeError
from convscope.pipeline.single import stack_input
from convscope.pipeline.preflight import preflight
from convscope.pipeline.results import RunResult, StreamedRun
from convscope.pipeline.sizing import Subject
from convscope.pipeline.single import run
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack
from convscope.stack.trace import trace_stack
from tests.helpers import REPO

SR = 22050
# a small vocoder: frames at sr/256 up to audio, through an MRF-like generator block
MRF = LayerConfig(type="Parallel", reduce="mean", layers=[
    LayerConfig(type="Residual", layers=[
        LayerConfig(type="LeakyReLU", negative_slope=0.1),
        LayerConfig(type="Conv1d", in_channels=8, out_channels=8, kernel_size=3, dilation=d,
                    padding=d)]) for d in (1, 3)])
STACK = [LayerConfig(type="Conv1d", in_channels=80, out_channels=16, kernel_size=7, padding=3,
                     padding_mode="reflect"),
         LayerConfig(type="ConvTranspose1d", in_channels=16, out_channels=8, kernel_size=32,
                     stride=16, padding=8),
         MRF,
         LayerConfig(type="ConvTranspose1d", in_channels=8, out_channels=2, kernel_size=32,
                     stride=16, padding=8),
         LayerConfig(type="Tanh")]


def feature_config(layers=STACK, end=3.0, **sections) -> RunConfig:
    cfg = RunConfig(data=DataConfig(path=str(REPO / "data/sample.wav"), sr=SR, features="log_mel",
                                    start=1.0, end=end),
                    model=ModelConfig(name="tiny_vocoder", layers=layers), report=False)
    cfg = replace(cfg, plots=replace(cfg.plots, enabled=False),
                  evaluate=replace(cfg.evaluate, enabled="false"), **sections)
    check_values(cfg)
    return cfg


def streamed(cfg: RunConfig, block_seconds: float = 0.1) -> RunConfig:
    return replace(cfg, stream=replace(cfg.stream, enabled="true", block_seconds=block_seconds,
                                       subtype="FLOAT"))


def checked(cfg: RunConfig, tmp_path):
    source = stack_input(cfg, REPO)
    plans = plan_stack(cfg.model.layers, source.shape)
    subject = Subject(build_stack(plans, 0), plans)
    return preflight(cfg, source, subject, tmp_path, None), source, plans


def test_one_shot_estimate_of_a_feature_input_covers_torchs_trace(tmp_path):
    """The one-shot forward's figure is convscope.estimate's of the built stack on the frames
    (at least the largest output torch makes); what the trace keeps beside it is the frames and
    every top-level output torch makes (the oracle: trace_stack's tensors)."""
    cfg = feature_config()
    result, source, plans = checked(cfg, tmp_path)
    stack = build_stack(plans, 0)
    found = convscope.estimate(stack, source.shape, sample_rate=source.sample_rate)
    assert not result.streamed and result.estimate.forward.bytes == found.one_shot_bytes
    traces = trace_stack(stack, source.samples[None], torch.device("cpu"))
    top = [t for t in traces if t.index in {p.index for p in plans}]
    assert len(top) == len(plans)
    assert result.estimate.kept_bytes == 4 * (source.samples.size
                                              + sum(t.output.size for t in top))
    assert found.one_shot_bytes >= 4 * max(t.output.size for t in top)


def test_feature_input_streams_when_one_shot_would_exceed_one_shot_gb(tmp_path):
    small = replace(feature_config(), limits=LimitsConfig(one_shot_gb=1e-4))
    result, _, _ = checked(small, tmp_path)
    assert result.streamed and result.estimate.block_samples is not None
    assert not checked(feature_config(), tmp_path)[0].streamed


def test_feature_input_over_the_memory_limit_unstreamed_is_refused_naming_the_layer(tmp_path):
    # a limit between the frames' own figure (audio.features.feature_bytes: they are made) and
    # the run's (the estimate of the one shot): the run is what is refused
    cfg = replace(feature_config(), stream=replace(feature_config().stream, enabled="false"))
    estimate = checked(cfg, tmp_path)[0].estimate
    segment = load_segment(cfg.data, REPO)
    frames = feature_bytes(FeatureSettings.from_config(cfg.data), segment.samples.shape[-1])
    assert frames < estimate.peak_bytes
    limit = (frames + estimate.peak_bytes) / 2
    cfg = replace(cfg, limits=LimitsConfig(memory_gb=limit / 1e9))
    with pytest.raises(ConvscopeError, match=r"^model\.layers\.[\d.]+: the run needs ~.*limit "
                                             r"[\d.]+ MB .*stream it \(stream\.enabled=auto"):
        run(cfg, tmp_path / "run", REPO)
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").rglob("*.*"))


def test_streamed_feature_run_equals_one_shot(tmp_path):
    """Many blocks of 0.1 s over 2 s of log-mel frames: the float WAV equals the one-shot
    forward to 1e-5, input.wav is the target audio, shapes.json says how it streamed."""
    one_shot = run(feature_config(), tmp_path / "one", REPO)
    assert isinstance(one_shot, RunResult)
    result = run(streamed(feature_config()), tmp_path / "streamed", REPO)
    assert isinstance(result, StreamedRun)
    expected = one_shot.traces[-1].output[0]
    for channel in range(2):
        got, rate = soundfile.read(str(tmp_path / f"streamed/audio/layer4_ch{channel}.wav"),
                                   dtype="float32")
        assert rate == SR and len(got) == expected.shape[-1]
        np.testing.assert_allclose(got, expected[channel], atol=1e-5, rtol=0)
    target, rate = soundfile.read(str(tmp_path / "streamed/audio/input.wav"), dtype="float32")
    np.testing.assert_allclose(target, one_shot.segment.target.samples[0], atol=1e-7)
    doc = json.loads((tmp_path / "streamed/shapes.json").read_text())
    assert doc["stream"]["mode"] == "overlap" and doc["stream"]["device"] == "cpu"
    assert doc["stream"]["blocks"] == -(-expected.shape[-1] // doc["stream"]["block_samples"])
    assert doc["stream"]["blocks"] >= 10 and doc["estimate"]["mode"] == "streamed"
    assert doc["input"]["shape"] == list(one_shot.segment.shape)


def test_streamed_feature_run_draws_the_frames_and_every_layer(tmp_path):
    cfg = streamed(feature_config(layers=STACK[:2], end=2.0), block_seconds=0.2)
    cfg = replace(cfg, plots=replace(cfg.plots, enabled=True))
    run(cfg, tmp_path, REPO)
    plots = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert plots == ["layer0_Conv1d.png", "layer1_ConvTranspose1d.png", "spectrogram.png"]
    assert json.loads((tmp_path / "shapes.json").read_text())["stream"]["blocks"] > 1


def test_stateful_mode_with_features_is_a_named_error(tmp_path):
    cfg = streamed(feature_config())
    cfg = replace(cfg, stream=replace(cfg.stream, mode="stateful"))
    with pytest.raises(ConvscopeError, match=r"^stream\.mode=stateful: data\.features=log_mel"):
        run(cfg, tmp_path / "run", REPO)
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").rglob("*.*"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="torch.cuda.is_available() is False")
def test_streamed_feature_run_on_cuda_equals_one_shot_on_the_cpu(tmp_path):
    one_shot = run(feature_config(), tmp_path / "one", REPO)
    result = run(replace(streamed(feature_config()), device="cuda"), tmp_path / "gpu", REPO)
    assert result.shapes["stream"]["device"].startswith("cuda")
    for channel in range(2):
        got, _ = soundfile.read(str(tmp_path / f"gpu/audio/layer4_ch{channel}.wav"),
                                dtype="float32")
        np.testing.assert_allclose(got, one_shot.traces[-1].output[0][channel], atol=1e-4)


@pytest.mark.slow
def test_hifigan_v1_streams_equal_to_one_shot(tmp_path):
    """The real preset on 0.5 s of speech-like audio, blocks of 0.1 s: the MRF's context
    recomputed at every block edge."""
    from omegaconf import OmegaConf

    from convscope.config.convert import to_run_config

    preset = to_run_config(OmegaConf.to_container(OmegaConf.load(
        REPO / "configs/model/hifigan_v1.yaml")))
    cfg = feature_config(layers=preset.model.layers, end=1.5)
    cfg = replace(cfg, data=replace(preset.data, path=cfg.data.path, start=1.0, end=1.5))
    one_shot = run(cfg, tmp_path / "one", REPO)
    run(streamed(cfg), tmp_path / "streamed", REPO)
    got, _ = soundfile.read(str(tmp_path / "streamed/audio/layer15_ch0.wav"), dtype="float32")
    np.testing.assert_allclose(got, one_shot.traces[-1].output[0][0], atol=1e-5, rtol=0)
