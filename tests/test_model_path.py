"""Any nn.Module through the one run path (issue 21 items 1, 2, 5): convscope.run(model=...,
audio=...) and model=module are estimated, decided once (preflight.decide, recorded in
shapes.json) and streamed with exact context, equal to the model's own forward; a model that
cannot stream runs one shot with the reason, or is refused naming its row when one shot would
not fit.

The oracle is the model's forward in this process: float WAVs (stream.subtype=FLOAT, gain 1)
hold the streamed output sample for sample.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import soundfile
import torch
from torch import nn

import convscope
from convscope.errors import ConvscopeError
from tests.reference_codecs import DacDecoder, SEANetDecoder

QUIET = ["plots.enabled=false", "report=false", "save.weights=false"]


def output_wav(out_dir) -> np.ndarray:
    wavs = sorted(p for p in (out_dir / "audio").glob("layer*_ch*.wav"))
    return np.stack([soundfile.read(str(p), dtype="float32")[0] for p in wavs])


def shapes(out_dir) -> dict:
    return json.loads((out_dir / "shapes.json").read_text())


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(got - expected).max() / np.abs(expected).max())


def test_dac_decoder_on_latents_streams_through_the_python_api(tmp_path):
    torch.manual_seed(0)
    model, latents = DacDecoder(8, 64).eval(), torch.randn(1, 8, 160)
    report = convscope.run([*QUIET, "stream.enabled=true", "stream.block_seconds=0.05"],
                           model=model, audio=latents, sample_rate="44100/512",
                           features="precomputed", out_dir=tmp_path / "run")
    with torch.no_grad():
        expected = model(latents)[0].numpy()
    doc = shapes(report.out_dir)
    assert doc["decision"]["streamed"] and "stream.enabled=true" in doc["decision"]["why"]
    assert doc["decision"]["engine"] == "overlap"  # no per-layer block rules: the analysis'
    assert doc["stream"]["left_context"] == doc["estimate"]["left_context"] > 0
    assert doc["stream"]["block_input_samples"] < latents.shape[-1]  # several blocks
    assert doc["output"]["shape"] == [1, 1, 160 * 512] and doc["output"]["sample_rate"] == 44100
    assert relative_error(output_wav(report.out_dir), expected) < 1e-5


def test_a_waveform_model_runs_one_shot_through_the_python_api(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 4, 9, padding=4), nn.Tanh(),
                          nn.ConvTranspose1d(4, 1, 4, stride=2, padding=1)).eval()
    audio = np.sin(np.linspace(0, 200, 4000)).astype(np.float32)
    report = convscope.run([*QUIET, "audio.subtype=FLOAT"], model=model, audio=audio,
                           sample_rate=8000, out_dir=tmp_path / "run")
    doc = shapes(report.out_dir)
    assert not doc["decision"]["streamed"] and doc["decision"]["why"].startswith("one shot")
    assert doc["input"]["path"] == "<array>" and doc["input"]["sample_rate"] == 8000
    with torch.no_grad():
        expected = model(torch.from_numpy(audio)[None, None])[0].numpy()
    got = output_wav(report.out_dir)
    gain = doc["audio"]["gain"]  # one-shot WAVs are scaled down only to keep from clipping
    assert relative_error(got / gain, expected) < 1e-5


class Upsampler(nn.Module):
    """A small generator: conv, a residual unit, a transposed conv x4, conv, tanh."""

    def __init__(self):
        super().__init__()
        self.pre = nn.Conv1d(8, 16, 7, padding=3)
        self.res = nn.Conv1d(16, 16, 3, padding=3, dilation=3)
        self.up = nn.ConvTranspose1d(16, 8, 8, stride=4, padding=2)
        self.post = nn.Conv1d(8, 1, 7, padding=3)

    def forward(self, x):
        x = self.pre(x)
        x = x + self.res(torch.nn.functional.leaky_relu(x, 0.1))
        return torch.tanh(self.post(self.up(x)))


def test_auto_streams_a_model_whose_one_shot_is_heavier_than_the_limit(tmp_path):
    torch.manual_seed(0)
    model, frames = Upsampler().eval(), torch.randn(1, 8, 2000)
    report = convscope.run([*QUIET, "stream.enabled=auto", "limits.one_shot_gb=0.001",
                            "stream.block_seconds=0.05"], model=model, audio=frames,
                           sample_rate=1000, features="precomputed", out_dir=tmp_path / "run")
    doc = shapes(report.out_dir)
    assert doc["decision"]["streamed"]
    assert "more than limits.one_shot_gb=0.001" in doc["decision"]["why"]
    assert doc["estimate"]["one_shot_bytes"] > 1e6
    with torch.no_grad():
        expected = model(frames)[0].numpy()
    assert relative_error(output_wav(report.out_dir), expected) < 1e-5


def test_an_lstm_runs_one_shot_with_the_reason_or_is_refused_naming_its_row(tmp_path):
    torch.manual_seed(0)
    model = SEANetDecoder(dimension=8, n_filters=2, ratios=(2, 2), lstm=1).eval()
    latents = torch.randn(1, 8, 50)
    report = convscope.run([*QUIET, "stream.enabled=true"], model=model, audio=latents,
                           sample_rate=100, features="precomputed", out_dir=tmp_path / "run")
    decision = shapes(report.out_dir)["decision"]
    assert not decision["streamed"]
    assert "streaming off" in decision["why"] and "LSTM" in decision["why"]
    with pytest.raises(ConvscopeError) as caught:
        convscope.run([*QUIET, "stream.enabled=true", "limits.memory_gb=0.000001"], model=model,
                      audio=latents, sample_rate=100, features="precomputed",
                      out_dir=tmp_path / "refused")
    message = str(caught.value)
    assert message.startswith("model: SEANetDecoder needs ~") and "\n" not in message
    assert "it cannot stream" in message and "model.1.lstm" in message


def test_stateful_streaming_of_a_module_that_is_not_a_chain_names_the_op(tmp_path):
    with pytest.raises(ConvscopeError, match=r"^stream.mode=stateful: res \(Conv1d\) takes its "):
        convscope.run([*QUIET, "stream.enabled=true", "stream.mode=stateful"],
                      model=Upsampler().eval(), audio=torch.randn(1, 8, 40), sample_rate=100,
                      features="precomputed", out_dir=tmp_path / "run")


def test_stateful_streaming_of_a_chain_equals_its_forward(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(8, 8, 5, padding=2), nn.LeakyReLU(0.1),
                          nn.ConvTranspose1d(8, 1, 4, stride=2, padding=1)).eval()
    frames = torch.randn(1, 8, 300)
    report = convscope.run([*QUIET, "stream.enabled=true", "stream.mode=stateful",
                            "stream.block_seconds=0.07"], model=model, audio=frames,
                           sample_rate=100, features="precomputed", out_dir=tmp_path / "run")
    with torch.no_grad():
        expected = model(frames)[0].numpy()
    assert shapes(report.out_dir)["stream"]["mode"] == "stateful"
    assert relative_error(output_wav(report.out_dir), expected) < 1e-5


def test_array_arguments_are_checked_in_one_line(tmp_path):
    model = nn.Conv1d(1, 1, 3)
    for kwargs, expected in [({"model": "net", "audio": np.zeros(10), "sample_rate": 8000},
                              "model: convscope.run(model=...) takes a torch.nn.Module"),
                             ({"model": model, "audio": None, "sample_rate": 8000}, "audio: "),
                             ({"model": model, "audio": np.zeros(10), "sample_rate": None},
                              "sample_rate: "),
                             ({"model": model, "audio": np.full(10, np.nan),
                               "sample_rate": 8000}, "audio: the array")]:
        with pytest.raises(ConvscopeError, match=re.escape(expected)):
            convscope.run(QUIET, out_dir=tmp_path / "run", **kwargs)


@pytest.mark.parametrize("enabled, seconds, gigabytes, blocker, streamed, why", [
    ("auto", 10, 0.5, None, False, "one shot: a segment of 10.0 s, ~500 MB"),
    ("auto", 100, 0.5, None, True, "stream.enabled=auto, segment of 100.0 s"),
    ("auto", 10, 2.0, None, True, "the one-shot run would need ~2 GB, more than "
                                  "limits.one_shot_gb=1"),
    ("auto", 10, 2.0, "recurrent", False, "streaming off (one-shot forward): recurrent"),
    ("true", 1, 0.1, None, True, "stream.enabled=true, segment of 1.0 s"),
    ("true", 1, 0.1, "recurrent", False, "streaming off (one-shot forward): recurrent"),
    ("false", 100, 5.0, None, False, "stream.enabled=false"),
])
def test_one_function_decides_one_shot_or_streamed(enabled, seconds, gigabytes, blocker,
                                                   streamed, why):
    """The rule, by cases: the config asks (true, or auto past stream.auto_seconds=60), or auto
    finds the one-shot estimate above limits.one_shot_gb=1; a blocker keeps it one shot."""
    from convscope.config.schema import LimitsConfig, StreamConfig
    from convscope.pipeline.preflight import decide

    decision = decide(StreamConfig(enabled=enabled, auto_seconds=60),
                      LimitsConfig(one_shot_gb=1.0), seconds, int(gigabytes * 1e9), blocker)
    assert decision.streamed == streamed
    assert why in decision.why


def test_a_streamed_model_run_draws_its_envelopes_and_spectrogram_window(tmp_path):
    """Streamed runs of any model draw what a streamed config stack draws of its last layer:
    the model's input and output envelopes (fed block by block) and the spectrogram of the
    plots window, as PNGs that decode; the output WAV is still the model's forward."""
    import matplotlib.image

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 3, 9, padding=4), nn.Tanh(),
                          nn.ConvTranspose1d(3, 2, 4, stride=2, padding=1)).eval()
    audio = np.random.default_rng(0).standard_normal((1, 8000)).astype(np.float32) * 0.1
    report = convscope.run(["report=false", "save.weights=false", "stream.enabled=true",
                            "stream.block_seconds=0.1", "plots.spectrogram_seconds=0.25"],
                           model=model, audio=audio, sample_rate=16000, out_dir=tmp_path / "run")
    plots = report.out_dir / "plots"
    drawn = sorted(p.name for p in plots.glob("*.png"))
    assert drawn == ["layer2_ConvTranspose1d.png", "spectrogram.png"]
    for name in drawn:
        assert matplotlib.image.imread(str(plots / name)).shape[0] > 100
    with torch.no_grad():
        expected = model(torch.from_numpy(audio)[None])[0].numpy()
    assert relative_error(output_wav(report.out_dir), expected) < 1e-5


def test_a_config_stack_and_the_same_module_as_an_object_take_one_path(tmp_path):
    """A config stack is one way to obtain an nn.Module: its run and a run of the same built
    module given as a Python object go through the same one-shot function (oneshot.run_one_shot)
    and give the same rows (shapes, formulas, MACs, receptive fields, exact rates) and the same
    output samples; the config run's rows add its keys, and it draws each layer."""
    from convscope.config.convert import to_run_config
    from convscope.stack.plan import plan_stack
    from convscope.stack.preset_weights import build_with_weights
    from tests.test_config import compose_run

    overrides = ["report=false", "save.weights=false", "audio.subtype=FLOAT",
                 "evaluate.enabled=false", "model=hifigan_style"]
    stack_run = convscope.run(overrides, out_dir=tmp_path / "stack")
    cfg = to_run_config(compose_run(*overrides))
    plans = plan_stack(cfg.model.layers, tuple(stack_run.shapes["input"]["shape"]))
    module = build_with_weights(plans, cfg.seed, cfg.model)
    audio, rate = soundfile.read(str(tmp_path / "stack" / "audio" / "input.wav"),
                                 dtype="float32")
    object_run = convscope.run(overrides[:4], model=module, audio=audio, sample_rate=rate,
                               out_dir=tmp_path / "object")
    by_config, by_object = stack_run.shapes["layers"], object_run.shapes["layers"]
    assert [row.pop("key") for row in by_config] == [plan.key for plan in plans]  # flat stack
    assert all("key" not in row for row in by_object)
    assert by_config == by_object and len(by_config) == 6
    assert stack_run.shapes["output"] == object_run.shapes["output"]
    assert np.array_equal(output_wav(tmp_path / "stack"), output_wav(tmp_path / "object"))
    drawn = sorted(p.name for p in (tmp_path / "stack" / "plots").glob("layer*.png"))
    assert len(drawn) == len(plans)  # a config stack: a figure per layer
    assert (tmp_path / "object" / "plots" / "layers_overview.png").is_file()
