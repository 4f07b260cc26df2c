"""Reading ahead and writing behind on threads (audio/background.py): the same bytes as the
direct path, errors raised once in the caller's thread, no thread or file left behind."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import numpy as np
import pytest

from convscope.audio.background import WriteBehind, read_ahead
from convscope.audio.blockio import FloatWav
from convscope.config.schema import DataConfig, LayerConfig, ModelConfig, RunConfig, StreamConfig
from convscope.pipeline.single import run
from tests.helpers import REPO

T = "ConvTranspose1d"
REFERENCE = [
    LayerConfig(type=T, in_channels=1, out_channels=2, kernel_size=3, stride=1, padding=1),
    LayerConfig(type=T, in_channels=2, out_channels=3, kernel_size=5, stride=2, padding=2,
                output_padding=1)]


def streamed_config(path, background_io: bool) -> RunConfig:
    cfg = RunConfig(data=DataConfig(path=str(path), sr=8000, start=0.0, end=None),
                    model=ModelConfig(layers=REFERENCE), report=False,
                    stream=StreamConfig(enabled="true", block_seconds=0.3,
                                        background_io=background_io))
    cfg.plots.enabled = False
    return cfg


def test_background_io_writes_the_same_bytes_as_the_direct_writer(tmp_path, make_wav):
    rng = np.random.default_rng(3)
    path = make_wav("n.wav", sr=8000, data=0.3 * rng.standard_normal(8000 * 2 + 17),
                    subtype="FLOAT")
    for background in (True, False):
        run(streamed_config(path, background), tmp_path / str(background), base_dir=REPO)
    wavs = sorted(p.name for p in (tmp_path / "True/audio").glob("*.wav"))
    assert {"input.wav", "layer1_ch0.wav", "layer1_ch1.wav", "layer1_ch2.wav"} <= set(wavs)
    for name in wavs:
        assert (tmp_path / "True/audio" / name).read_bytes() == \
            (tmp_path / "False/audio" / name).read_bytes(), name
    assert not [t for t in threading.enumerate() if t.name.startswith("convscope-")]


def test_a_failed_background_write_stops_the_run_with_its_error_and_no_wavs(
        tmp_path, make_wav, monkeypatch):
    path = make_wav("tone.wav", seconds=3.0, sr=8000)
    calls = []
    original = FloatWav.write

    def full_disk(self, frames):
        calls.append(self.path)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        original(self, frames)

    monkeypatch.setattr(FloatWav, "write", full_disk)
    with pytest.raises(OSError, match="No space left on device") as failure:
        run(streamed_config(path, True), tmp_path / "out", base_dir=REPO)
    # the WAV it failed on, named by its final name (sndfile_write_errors), raised once
    assert Path(failure.value.filename).name == calls[4].name.split(".partial")[0][1:] + ".wav"
    assert not list((tmp_path / "out").rglob("*.wav*"))  # no WAV and no temp file
    assert not (tmp_path / "out/shapes.json").exists()
    assert not [t for t in threading.enumerate() if t.name.startswith("convscope-")]


def test_write_behind_runs_calls_in_order_and_raises_the_first_error_once_per_call():
    done = []

    def write(i):
        if i == 3:
            raise ValueError("block 3")
        done.append(i)

    with pytest.raises(ValueError, match="block 3"):
        with WriteBehind(depth=2) as behind:
            for i in range(100):
                behind.submit(write, i)
    assert done == [0, 1, 2]  # nothing written after the failure


def test_read_ahead_yields_the_items_and_raises_the_producers_error():
    assert list(read_ahead(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        raise OSError(errno.EIO, "Input/output error", "in.wav")

    got = []
    with pytest.raises(OSError, match="Input/output error") as failure:
        for item in read_ahead(failing()):
            got.append(item)
    assert got == [1] and failure.value.filename == "in.wav"


def test_closing_read_ahead_early_stops_its_thread_and_closes_the_source():
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield np.zeros(4)
        finally:
            closed.set()

    reader = read_ahead(endless(), depth=2)
    next(reader)
    reader.close()
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "convscope-read-ahead"]
