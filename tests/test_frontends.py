"""The frontend group (configs/frontend/*.yaml): each sets every feature key a checkpoint was
trained on, and its frames are its published implementation's, restated here from that code:

- hifigan, bigvgan_24k: meldataset.mel_spectrogram (tests/test_features.py's torch restatement)
- vocos: MelSpectrogramFeatures = torchaudio MelSpectrogram(power=1, center=True, reflect, HTK
  scale, no norm) then log(clip(x, 1e-7)); torchaudio is not installed, so its STFT and
  melscale_fbanks are written out in numpy below
- melgan: mel2wav Audio2Mel: reflect pad, |STFT| without a floor, Slaney mel, log10 clamp 1e-5
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import convscope
from convscope.audio.features import FeatureSettings, compute_features, feature_frames
from convscope.audio.segment import Segment
from convscope.config.convert import to_dataclass
from convscope.config.schema import DataConfig
from tests.helpers import REPO
from tests.test_config import compose_run
from tests.test_features import hifigan_mel_spectrogram

FRONTENDS = ("hifigan", "bigvgan_24k", "vocos", "melgan")
PRESET_FRONTENDS = {"hifigan_v1": "hifigan", "hifigan_v2": "hifigan", "hifigan_v3": "hifigan",
                    "bigvgan_v2_24k": "bigvgan_24k", "melgan": "melgan"}


def frontend_data(name: str) -> DataConfig:
    """configs/frontend/<name>.yaml's data node as the DataConfig a run gets."""
    node = OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "frontend" / f"{name}.yaml"))
    return to_dataclass(node["data"], DataConfig)


def speech(sr: int) -> np.ndarray:
    y, _ = librosa.load(str(REPO / "data" / "sample.wav"), sr=sr, offset=2.0, duration=0.8)
    return y.astype(np.float32)


def frames_of(name: str) -> tuple[np.ndarray, np.ndarray, DataConfig]:
    data = frontend_data(name)
    audio = speech(data.sr)
    return audio, feature_frames(audio, FeatureSettings.from_config(data)), data


def torchaudio_htk_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int,
                          sample_rate: int) -> np.ndarray:
    """torchaudio.functional.melscale_fbanks(norm=None, mel_scale="htk"), (n_freqs, n_mels)."""
    all_freqs = np.linspace(0, sample_rate // 2, n_freqs)
    m_pts = np.linspace(2595.0 * np.log10(1.0 + f_min / 700.0),
                        2595.0 * np.log10(1.0 + f_max / 700.0), n_mels + 2)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up))


def vocos_features(audio: np.ndarray, sr: int = 24000, n_fft: int = 1024, hop: int = 256,
                   n_mels: int = 100) -> np.ndarray:
    """Vocos MelSpectrogramFeatures(padding="center"): torchaudio's Spectrogram (reflect pad
    n_fft // 2, periodic Hann, |X|), melscale_fbanks (HTK, no norm), safe_log (clip 1e-7)."""
    padded = np.pad(audio.astype(np.float64), (n_fft // 2, n_fft // 2), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # torch.hann_window
    count = 1 + (len(padded) - n_fft) // hop
    frames = np.stack([padded[i * hop: i * hop + n_fft] * window for i in range(count)], axis=1)
    magnitude = np.abs(np.fft.rfft(frames, axis=0))
    fbanks = torchaudio_htk_fbanks(n_fft // 2 + 1, 0.0, sr / 2, n_mels, sr)
    return np.log(np.clip(fbanks.T @ magnitude, 1e-7, None))


def melgan_audio2mel(audio: np.ndarray, sr: int = 22050, n_fft: int = 1024, hop: int = 256,
                     win: int = 1024, n_mels: int = 80) -> np.ndarray:
    """mel2wav/modules.py Audio2Mel.forward, in today's torch.stft spelling."""
    mel_basis = torch.from_numpy(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels,
                                                     fmin=0.0, fmax=None))
    p = (n_fft - hop) // 2
    y = torch.nn.functional.pad(torch.from_numpy(audio)[None, None], (p, p), "reflect")[:, 0]
    fft = torch.stft(y, n_fft=n_fft, hop_length=hop, win_length=win,
                     window=torch.hann_window(win), center=False, return_complex=True)
    magnitude = torch.sqrt(fft.real ** 2 + fft.imag ** 2)
    return torch.log10(torch.clamp(mel_basis @ magnitude, min=1e-5))[0].numpy()


@pytest.mark.parametrize("name", ["hifigan", "bigvgan_24k"])
def test_hifigan_and_bigvgan_frontends_are_meldatasets_mel_spectrogram(name):
    audio, ours, data = frames_of(name)
    theirs = hifigan_mel_spectrogram(torch.from_numpy(audio)[None], data.n_fft, data.n_mels,
                                     data.sr, data.hop_length, data.win_length, data.fmin,
                                     data.fmax or data.sr / 2)[0].numpy()
    assert ours.shape == theirs.shape == (data.n_mels, len(audio) // data.hop_length)
    np.testing.assert_allclose(np.exp(ours), np.exp(theirs), rtol=1e-4, atol=2e-7)


def test_vocos_frontend_is_torchaudios_htk_mel_with_a_1e7_log_floor():
    audio, ours, data = frames_of("vocos")
    theirs = vocos_features(audio)
    assert ours.shape == theirs.shape == (100, 1 + len(audio) // 256)  # centred frames
    # float32 here, float64 there: as magnitudes within 1e-4 of each other (and of the floor)
    np.testing.assert_allclose(np.exp(ours), np.exp(theirs), rtol=1e-4, atol=1e-6)
    # the choices are what make it Vocos's: each one alone moves the frames far more than that
    settings = FeatureSettings.from_config(data)
    for change in ({"mel_scale": "slaney"}, {"mel_norm": "slaney"}, {"pad_mode": "constant"}):
        other = feature_frames(audio, FeatureSettings(**{**settings.__dict__, **change}))
        assert np.abs(np.exp(other) - np.exp(theirs)).max() > 1e-2, change


def test_melgan_frontend_is_audio2mel():
    audio, ours, data = frames_of("melgan")
    theirs = melgan_audio2mel(audio)
    assert ours.shape == theirs.shape == (80, len(audio) // 256)
    np.testing.assert_allclose(10 ** ours, 10 ** theirs, rtol=1e-4, atol=2e-7)


@pytest.mark.parametrize("preset, frontend", sorted(PRESET_FRONTENDS.items()))
def test_each_preset_names_its_frontend_and_the_command_line_wins(preset, frontend):
    cfg = compose_run(f"model={preset}")
    assert cfg.data.frontend == frontend
    expected = frontend_data(frontend)
    for key in ("features", "sr", "n_fft", "hop_length", "n_mels", "fmax", "mel_scale"):
        assert cfg.data[key] == getattr(expected, key), key
    other = compose_run(f"model={preset}", "frontend=vocos", "data.n_mels=80")
    assert (other.data.frontend, other.data.mel_scale, other.data.n_mels) == ("vocos", "htk", 80)


def test_every_frontend_sets_every_feature_key():
    keys = set(DataConfig.__dataclass_fields__) - {"path", "start", "end", "mono", "shard",
                                                   "num_shards", "frame_rate"}
    for name in FRONTENDS:
        node = OmegaConf.load(REPO / "configs" / "frontend" / f"{name}.yaml")
        assert set(node["data"]) == keys, name


def test_an_unnamed_log_mel_warns_about_fmax_and_a_named_one_says_which(caplog):
    audio = speech(22050)
    segment = Segment(audio[None], 22050, Path("speech.wav"), 0.0, len(audio) / 22050)
    caplog.set_level("INFO", logger="convscope")
    plain = compute_features(segment, DataConfig(sr=22050, features="log_mel"))
    assert "data.fmax is unset: the 80 mel bands reach sr / 2 = 11025 Hz" in caplog.text
    assert "frames by the data.* keys (no frontend=)" in plain.summary()
    caplog.clear()
    named = compute_features(segment, frontend_data("hifigan"))
    assert "data.fmax is unset" not in caplog.text
    assert "log_mel frames by frontend=hifigan: 80 slaney mel bands 0-8000 Hz" in named.summary()


def test_model_module_logs_the_frontend_it_used(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.py").write_text(textwrap.dedent('''
        from torch import nn


        class Tiny(nn.Sequential):
            def __init__(self):
                super().__init__(nn.ConvTranspose1d(100, 1, 4, 2, 1))
    '''))
    caplog.set_level("INFO", logger="convscope")
    quiet = ["plots.enabled=false", "report=false", "audio.enabled=false", "data.end=2.3"]
    convscope.run(["model=module", "model.target=tiny.py:Tiny", "frontend=vocos", *quiet],
                  out_dir="vocos")
    assert "log_mel frames by frontend=vocos: 100 htk mel bands" in caplog.text
    assert "data.fmax is unset" not in caplog.text
    convscope.run(["model=module", "model.target=tiny.py:Tiny", "data.features=log_mel",
                   "data.n_mels=100", *quiet], out_dir="plain")
    assert "data.fmax is unset" in caplog.text
