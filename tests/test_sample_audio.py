"""data/sample.wav is what scripts/make_sample_audio.py makes, and stays small."""

import subprocess
import sys

import numpy as np
import soundfile

from tests.helpers import REPO


def test_script_reproduces_the_committed_sample(tmp_path):
    out = tmp_path / "sample.wav"
    subprocess.run([sys.executable, str(REPO / "scripts/make_sample_audio.py"), "--out", str(out)],
                   check=True, capture_output=True)
    made, made_sr = soundfile.read(str(out), dtype="int16")
    committed, sr = soundfile.read(str(REPO / "data/sample.wav"), dtype="int16")
    assert made_sr == sr == 22050
    assert np.array_equal(made, committed)


def test_sample_is_small_long_enough_and_not_silent():
    info = soundfile.info(str(REPO / "data/sample.wav"))
    assert info.samplerate == 22050 and info.channels == 1
    assert info.duration >= 4.0
    assert (REPO / "data/sample.wav").stat().st_size < 300_000
    data, _ = soundfile.read(str(REPO / "data/sample.wav"))
    segment = data[2 * 22050: 3 * 22050]  # the reference segment has content
    assert np.sqrt(np.mean(segment ** 2)) > 0.05
