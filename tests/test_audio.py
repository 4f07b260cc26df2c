"""load_segment on real files of many kinds, and every way a file or segment can be wrong."""

from pathlib import Path

import numpy as np
import pytest
import soundfile

from convscope.audio.segment import load_segment
from convscope.audio.wav import clipping_gain, write_wav
from convscope.config.schema import DataConfig
from convscope.errors import ConvscopeError


def load(path, **kw):
    return load_segment(DataConfig(path=str(path), **kw), Path("/"))


@pytest.mark.parametrize("sr,channels,subtype,fmt,name", [
    (44100, 2, "PCM_24", None, "stereo24.wav"),
    (48000, 1, "FLOAT", None, "float.wav"),
    (44100, 2, "PCM_16", "FLAC", "stereo.flac"),
    (8000, 1, "PCM_16", None, "low.wav"),
])
def test_loads_and_resamples_any_format(make_wav, sr, channels, subtype, fmt, name):
    path = make_wav(name, seconds=1.5, sr=sr, channels=channels, subtype=subtype, format=fmt)
    seg = load(path, sr=16000, start=0.25, end=1.0)
    assert seg.samples.shape == (1, 12000)
    assert seg.sample_rate == 16000 and seg.samples.dtype == np.float32
    # The 220 Hz tone survives resampling: its level is close to the written 0.5 amplitude.
    assert 0.4 < np.sqrt(2 * np.mean(seg.samples[0, 1000:-1000] ** 2)) * (1 if channels == 1 else 2) < 0.8


def test_mono_false_keeps_channels(make_wav):
    seg = load(make_wav("st.wav", channels=2, sr=44100), sr=16000, start=0.0, end=1.0, mono=False)
    assert seg.shape == (1, 2, 16000)


def test_end_none_reads_to_the_end(make_wav):
    seg = load(make_wav(seconds=1.5), sr=16000, start=0.5, end=None)
    assert seg.samples.shape == (1, 16000) and seg.end == pytest.approx(1.5)


def test_missing_file(tmp_path):
    with pytest.raises(ConvscopeError, match=r"data.path: .*nope.wav does not exist"):
        load(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(ConvscopeError, match="is a directory"):
        load(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(ConvscopeError, match=r"empty.wav is empty"):
        load(path)


def test_zero_frames(make_wav):
    path = make_wav("silent.wav", data=np.zeros((0, 1)))
    with pytest.raises(ConvscopeError, match=r"silent.wav is empty \(0 samples\)"):
        load(path, start=0.0, end=None)


def test_undecodable_file(tmp_path):
    path = tmp_path / "noise.wav"
    path.write_bytes(b"this is not audio at all" * 100)
    with pytest.raises(ConvscopeError, match=r"data.path: cannot decode .*noise.wav"):
        load(path)


def test_segment_past_end_says_real_duration(make_wav):
    with pytest.raises(ConvscopeError, match=r"data.end: segment 1.0-3.0 s .* lasts 1.500 s"):
        load(make_wav(seconds=1.5), start=1.0, end=3.0)


def test_start_past_end_of_file(make_wav):
    with pytest.raises(ConvscopeError, match="lasts 1.500 s"):
        load(make_wav(seconds=1.5), start=2.0, end=None)


@pytest.mark.parametrize("start,end,pattern", [(-1.0, 1.0, "data.start must be >= 0"),
                                               (1.0, 1.0, "data.start must be smaller")])
def test_bad_segment_bounds(make_wav, start, end, pattern):
    with pytest.raises(ConvscopeError, match=pattern):
        load(make_wav(), start=start, end=end)


def test_non_finite_samples(make_wav):
    data = np.zeros((16000, 1), dtype=np.float32)
    data[8000] = np.nan
    path = make_wav("nan.wav", sr=16000, subtype="FLOAT", data=data)
    with pytest.raises(ConvscopeError, match=r"nan.wav holds .*non-finite samples .* 0.500000 s"):
        load(path, sr=16000, start=0.0, end=None)


def test_write_wav_roundtrip_and_gain(tmp_path):
    x = np.stack([np.linspace(-2, 2, 100), np.linspace(1, -1, 100)]).astype(np.float32)
    gain = clipping_gain(float(np.abs(x).max()), 0.5)
    assert gain == pytest.approx(0.25)
    write_wav(tmp_path / "a.wav", x, 32000, "FLOAT", gain)
    back, sr = soundfile.read(str(tmp_path / "a.wav"), always_2d=True)
    assert sr == 32000 and back.shape == (100, 2)
    np.testing.assert_allclose(back.T, x * 0.25, atol=1e-7)
    assert not list(tmp_path.glob(".*partial*"))


def test_clipping_gain_never_amplifies():
    assert clipping_gain(0.3, 0.99) == 1.0
    assert clipping_gain(1.98, 0.99) == pytest.approx(0.5)
