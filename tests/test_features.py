"""Feature frontends (convscope.audio.features): frames checked against librosa itself and against
HiFi-GAN's meldataset.mel_spectrogram written here with torch.stft; then a feature run through the
pipeline: shapes.json, exact rates, WAVs, plots and the evaluate stage's refusal."""

import json
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile
import torch

from convscope.audio.features import FeatureSettings, compute_features, feature_frames
from convscope.audio.segment import Segment
from convscope.config.schema import DataConfig, LayerConfig, ModelConfig, RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.single import run
from tests.helpers import REPO

SR = 22050


@pytest.fixture(scope="module")
def speech():
    """1.3 s of the bundled sample at 22050 Hz: not a whole number of hops."""
    y, _ = librosa.load(str(REPO / "data/sample.wav"), sr=SR, offset=2.0, duration=1.3)
    return y.astype(np.float32)


def settings(kind="log_mel", n_fft=1024, hop=256, win=None, n_mels=80, fmin=0.0, fmax=None,
             center=False, sr=SR):
    data = DataConfig(sr=sr, features=kind, n_fft=n_fft, hop_length=hop, win_length=win,
                      n_mels=n_mels, fmin=fmin, fmax=fmax, center=center)
    return FeatureSettings.from_config(data)


def hifigan_mel_spectrogram(y, n_fft, num_mels, sampling_rate, hop_size, win_size, fmin, fmax):
    """HiFi-GAN's meldataset.mel_spectrogram (center=False), in today's torch.stft spelling."""
    mel_basis = torch.from_numpy(librosa.filters.mel(sr=sampling_rate, n_fft=n_fft,
                                                     n_mels=num_mels, fmin=fmin, fmax=fmax))
    hann_window = torch.hann_window(win_size)
    pad = int((n_fft - hop_size) / 2)
    y = torch.nn.functional.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    spec = torch.stft(y, n_fft, hop_length=hop_size, win_length=win_size, window=hann_window,
                      center=False, pad_mode="reflect", normalized=False, onesided=True,
                      return_complex=True)
    spec = torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-9)
    spec = torch.matmul(mel_basis, spec)
    return torch.log(torch.clamp(spec, min=1e-5))  # spectral_normalize_torch


@pytest.mark.parametrize("n_fft,hop,win,fmax", [(1024, 256, 1024, 8000.0), (1024, 256, 800, None),
                                                (512, 128, 512, None)])
def test_log_mel_is_hifigans_mel_spectrogram(speech, n_fft, hop, win, fmax):
    s = settings("log_mel", n_fft, hop, win, fmax=fmax)
    ours = feature_frames(speech, s)
    theirs = hifigan_mel_spectrogram(torch.from_numpy(speech)[None], n_fft, 80, SR, hop, win,
                                     0.0, s.fmax)[0].numpy()
    assert ours.shape == theirs.shape == (80, len(speech) // hop)
    # float32 STFTs differ by ~1e-7 of the frame's energy: in the log that is ~1e-5 for loud
    # bands and up to ~3e-3 for the quietest, next to the 1e-5 clamp; as magnitudes, ~1e-6
    np.testing.assert_allclose(np.exp(ours), np.exp(theirs), rtol=1e-4, atol=2e-7)
    mel = feature_frames(speech, replace(s, kind="mel"))
    np.testing.assert_allclose(np.log(np.maximum(mel, 1e-5)), ours, atol=1e-5)


@pytest.mark.parametrize("n_fft,hop", [(1024, 256), (1024, 255), (400, 160), (256, 300)])
def test_hifigan_framing_gives_one_frame_per_whole_hop(n_fft, hop):
    """center=false: T x hop is the audio's length rounded down to a hop, for even and odd
    n_fft - hop (and frames that skip samples)."""
    rng = np.random.default_rng(0)
    for length in (hop, hop + 1, 5 * hop - 1, 5 * hop, 5 * hop + 7):
        s = settings("stft", n_fft, hop)
        frames = feature_frames(rng.standard_normal(length).astype(np.float32), s)
        assert frames.shape == (n_fft // 2 + 1, s.frames(length))
        assert frames.shape[1] * hop == length - length % hop


@pytest.mark.parametrize("n_fft,hop,win", [(1024, 256, None), (1024, 256, 600), (400, 100, 400)])
def test_centred_stft_and_mel_are_librosas(speech, n_fft, hop, win):
    s = settings("stft", n_fft, hop, win, center=True)
    stft = feature_frames(speech, s)
    expected = np.abs(librosa.stft(speech, n_fft=n_fft, hop_length=hop, win_length=win,
                                   window="hann", center=True))
    assert stft.shape == expected.shape == (n_fft // 2 + 1, 1 + len(speech) // hop)
    np.testing.assert_allclose(stft, expected, rtol=1e-4, atol=1e-4)
    mel = feature_frames(speech, replace(s, kind="mel", n_mels=64, fmin=50.0))
    expected = librosa.feature.melspectrogram(y=speech, sr=SR, n_fft=n_fft, hop_length=hop,
                                              win_length=win, center=True, power=1.0, n_mels=64,
                                              fmin=50.0)
    # ours adds HiFi-GAN's 1e-9 under the square root: at most sqrt(1e-9) per STFT bin
    np.testing.assert_allclose(mel, expected, rtol=1e-4, atol=1e-4)


def test_chunks_of_frames_change_nothing(speech):
    s = settings("log_mel")
    # the same frames through FFTs batched differently: equal up to float32 rounding
    np.testing.assert_allclose(feature_frames(speech, s, frames_per_chunk=7),
                               feature_frames(speech, s), rtol=0, atol=1e-5)


def test_mel_bin_frequencies_are_the_filterbanks_centres():
    s = settings("mel", n_fft=2048, n_mels=40)
    basis = librosa.filters.mel(sr=SR, n_fft=2048, n_mels=40)
    peaks = np.argmax(basis, axis=1) * SR / 2048
    np.testing.assert_allclose(s.bin_frequencies(), peaks, atol=SR / 2048)
    assert np.allclose(settings("stft", n_fft=512).bin_frequencies(),
                       np.fft.rfftfreq(512, 1 / SR))


def segment_of(samples):
    return Segment(np.atleast_2d(samples).astype(np.float32), SR, Path("x.wav"), 0.0,
                   samples.shape[-1] / SR)


def test_compute_features_gives_the_stack_input_at_the_exact_frame_rate(speech):
    data = DataConfig(sr=SR, features="log_mel")
    segment = segment_of(speech)
    features = compute_features(segment, data)
    assert features.shape == (1, 80, len(speech) // 256)
    assert features.sample_rate == Fraction(22050, 256) and float(features.sample_rate) == \
        86.1328125
    assert features.target is segment and features.samples.dtype == np.float32


def test_several_channels_or_no_frame_is_a_named_error(speech):
    data = DataConfig(sr=SR, features="mel", mono=False)
    with pytest.raises(ConvscopeError, match=r"^data\.mono: .*2"):
        compute_features(segment_of(np.stack([speech, speech])), data)
    with pytest.raises(ConvscopeError, match=r"^data\.hop_length: a 255-sample"):
        compute_features(segment_of(speech[:255]), data)


# --- the pipeline -------------------------------------------------------------------------------

VOCODER = [LayerConfig(type="ConvTranspose1d", in_channels=80, out_channels=1, kernel_size=512,
                       stride=256, padding=128)]


def feature_config(**data):
    return RunConfig(data=DataConfig(sr=SR, features="log_mel", start=2.0, end=3.0, **data),
                     model=ModelConfig(name="mel_x256", layers=VOCODER))


@pytest.fixture(scope="module")
def feature_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("log_mel")
    return run(feature_config(), out, base_dir=REPO)


def test_a_log_mel_run_writes_frames_in_and_audio_out_at_exact_rates(feature_run):
    doc = json.loads((feature_run.out_dir / "shapes.json").read_text())
    frames = SR // 256
    assert doc["input"]["shape"] == [1, 80, frames]
    assert doc["input"]["sample_rate"] == 22050 / 256
    assert doc["input"]["sample_rate_fraction"] == "11025/128"
    assert doc["input"]["features"] == {"kind": "log_mel", "frontend": None, "n_fft": 1024,
                                        "hop_length": 256, "win_length": 1024, "n_mels": 80,
                                        "fmin": 0.0, "fmax": SR / 2, "center": False,
                                        "pad_mode": "reflect", "mel_scale": "slaney",
                                        "mel_norm": "slaney", "power_floor": 1e-9,
                                        "log_floor": 1e-5, "log_base": "e"}
    assert doc["input"]["target"] == {"samples": SR, "shape": [1, 1, SR], "sample_rate": SR,
                                      "sample_rate_fraction": "22050",
                                      "path": str(REPO / "data/sample.wav")}
    assert doc["output"] == {"shape": [1, 1, 256 * frames], "sample_rate": SR,
                             "sample_rate_fraction": "22050"}
    layer = doc["layers"][0]
    assert (layer["sample_rate_in_fraction"], layer["sample_rate_out"]) == ("11025/128", SR)
    info = soundfile.info(str(feature_run.out_dir / "audio/layer0_ch0.wav"))
    assert (info.samplerate, info.frames) == (SR, 256 * frames)
    target, rate = soundfile.read(str(feature_run.out_dir / "audio/input.wav"))
    assert rate == SR and len(target) == SR
    expected = compute_features(feature_run.segment.target, feature_config().data).samples
    np.testing.assert_array_equal(feature_run.segment.samples, expected)


def test_a_feature_run_draws_images_and_skips_the_evaluate_stage(feature_run):
    plots = sorted(p.name for p in (feature_run.out_dir / "plots").glob("*.png"))
    assert plots == ["layer0_ConvTranspose1d.png", "spectrogram.png"]
    assert not (feature_run.out_dir / "metrics.json").exists()
    page = (feature_run.out_dir / "index.html").read_text()
    assert "11025/128 Hz (86.1328125 Hz)" in page and "log_mel" in page


def test_evaluate_true_with_features_is_a_named_error(tmp_path):
    cfg = feature_config()
    cfg = replace(cfg, evaluate=replace(cfg.evaluate, enabled="true"))
    with pytest.raises(ConvscopeError, match=r"^evaluate\.enabled=true: the input is log_mel"):
        run(cfg, tmp_path, base_dir=REPO)
    assert not list(tmp_path.rglob("*.*"))


def test_feature_runs_stream_when_asked_and_say_so(tmp_path, caplog):
    """stream.enabled=true streams the frames block by block (tests/test_feature_streaming.py
    compares it with one shot); the evaluate stage stays off, as for one shot."""
    cfg = feature_config()
    cfg = replace(cfg, stream=replace(cfg.stream, enabled="true"), plots=replace(
        cfg.plots, enabled=False), audio=replace(cfg.audio, enabled=False), report=False)
    with caplog.at_level("INFO", logger="convscope"):
        result = run(cfg, tmp_path, base_dir=REPO)
    assert result.shapes["output"]["shape"] == [1, 1, 256 * (SR // 256)]
    assert result.shapes["stream"]["mode"] == "overlap"
    assert sum("block by block over log_mel frames" in m for m in caplog.messages) == 1
    assert sum("evaluate: off, the input is log_mel" in m for m in caplog.messages) == 1


@pytest.mark.parametrize("kind, n_fft, hop, samples", [
    ("stft", 4096, 64, 48000), ("stft", 16384, 16, 32000), ("log_mel", 1024, 256, 160000),
    ("mel", 2048, 8, 64000), ("stft", 512, 1, 20000),
])
def test_the_frontends_memory_estimate_bounds_its_measured_peak_within_2x(kind, n_fft, hop,
                                                                          samples):
    import tracemalloc

    from convscope.audio.features import feature_bytes

    settings = FeatureSettings(kind, 16000, n_fft, hop, n_fft, 80, 0.0, 8000.0, False)
    audio = np.random.default_rng(0).standard_normal(samples).astype(np.float32)
    feature_frames(audio[:4096], settings)  # librosa's imports and caches, outside the peak
    tracemalloc.start()
    try:
        feature_frames(audio, settings)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= feature_bytes(settings, samples) <= 2 * peak


def test_frames_that_would_not_fit_memory_are_refused_before_they_are_made():
    import resource

    data = DataConfig(features="stft", n_fft=1048576, hop_length=1)
    segment = Segment(samples=np.zeros((1, 16000), np.float32), sample_rate=16000,
                      path=Path("x.wav"), start=0.0, end=1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ConvscopeError, match=r"^data.n_fft: stft frames of n_fft=1048576, "
                                             r"hop_length=1 on 16000 samples would take ~55 GB"):
        compute_features(segment, data, limit_bytes=12 * 10**9)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KB: nothing big
