"""scripts/run.py end to end, as a user runs it: outputs, overrides, and one-line errors."""

import hashlib
import json

import numpy as np
import pytest
import soundfile

from tests.helpers import REPO, run_script


def shapes(run_dir):
    return json.loads((run_dir / "shapes.json").read_text())


def test_reference_example_logs_and_writes_the_run_dir(tmp_path):
    result = run_script("run.py", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    log = result.stdout
    for text in ["[1,2,3]", "[2,3,5]", "[2]", "[3]", "[1,2,16000]", "[1,3,32000]",
                 "L_out = (16000-1)*2 - 2*2 + 1*(5-1) + 1 + 1 = 32000", "gain"]:
        assert text in log, text
    assert str(tmp_path) in log.splitlines()[-1]  # the last line says where the outputs went
    assert "[1,3,32000]" in (tmp_path / "run.log").read_text()
    assert (tmp_path / "weights.pt").stat().st_size > 0
    assert soundfile.info(str(tmp_path / "audio/input.wav")).samplerate == 16000
    for channel in range(3):
        info = soundfile.info(str(tmp_path / f"audio/layer1_ch{channel}.wav"))
        assert (info.samplerate, info.frames) == (32000, 32000)


@pytest.mark.parametrize("overrides,out_shape,rate,in_len", [
    (["model.layers.1.stride=4", "model.layers.1.output_padding=3"], [1, 3, 64000], 64000, 16000),
    (["data.start=0.5", "data.end=1.25"], [1, 3, 24000], 32000, 12000),
    (["model=encoder_decoder"], [1, 1, 16000], 16000, 16000),
])
def test_overrides_change_the_result_as_the_formula_says(tmp_path, overrides, out_shape, rate,
                                                         in_len):
    result = run_script("run.py", *overrides, "plots.enabled=false", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    doc = shapes(tmp_path)
    assert doc["input"]["shape"][-1] == in_len
    assert doc["output"] == {"shape": out_shape, "sample_rate": rate,
                             "sample_rate_fraction": str(rate)}
    last = f"layer{len(doc['layers']) - 1}_ch0.wav"
    assert soundfile.info(str(tmp_path / "audio" / last)).samplerate == rate


def test_any_wav_a_user_passes_stereo_44k_24bit_flac(tmp_path, make_wav):
    path = make_wav("my song.flac", seconds=3.2, sr=44100, channels=2, subtype="PCM_24",
                    format="FLAC")
    out = tmp_path / "run"
    result = run_script("run.py", f"data.path={path}", f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr
    doc = shapes(out)
    assert doc["input"]["shape"] == [1, 1, 16000] and doc["input"]["sample_rate"] == 16000
    assert doc["output"]["shape"] == [1, 3, 32000]


def corrupt(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 50)
    return path


def empty(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    return path


def with_nan(tmp_path):
    data = np.zeros((40000, 1), dtype=np.float32)
    data[33000] = np.inf
    path = tmp_path / "inf.wav"
    soundfile.write(str(path), data, 16000, subtype="FLOAT")
    return path


def sample(_tmp_path):
    return REPO / "data/sample.wav"


BAD_INPUTS = [
    (lambda t: t / "missing.wav", [], ["data.path", "missing.wav", "does not exist"]),
    (lambda t: t, [], ["data.path", "is a directory with no audio files"]),
    (corrupt, [], ["data.path", "corrupt.wav", "cannot decode"]),
    (empty, [], ["data.path", "empty.wav", "empty"]),
    (with_nan, ["data.start=0", "data.end=2.5"], ["inf.wav", "non-finite", "2.062500 s"]),
    (sample, ["data.start=-1"], ["data.start", "-1"]),
    (sample, ["data.start=2", "data.end=1"], ["data.end", "start=2.0", "end=1.0"]),
    (sample, ["data.start=3", "data.end=9"], ["data.end", "3.0-9.0", "4.500 s"]),
    (sample, ["model.layers.1.output_padding=2"],
     ["model.layers.1.output_padding", "output_padding=2", "stride=2"]),
    (sample, ["model.layers.1.in_channels=3"], ["model.layers.1.in_channels", "3", "2"]),
    (sample, ["model.layers.1.groups=2"], ["model.layers.1.groups", "groups=2", "out_channels=3"]),
    (sample, ["model.layers.0.padding_mode=circular"], ["model.layers.0.padding_mode", "zeros"]),
    (sample, ["model.layers.1.padding=40000"], ["model.layers.1", "output length"]),
    (sample, ["model.layers.0.kernel_size=abc"], ["model.layers.0.kernel_size", "abc"]),
    (sample, ["model.layers.0.strde=2"], ["model.layers.0.strde"]),
    (sample, ["model=nope"], ["model/nope", "seed_example"]),
    (sample, ["data.features=spectrogram"], ["data.features", "log_mel", "'spectrogram'"]),
    (sample, ["data.hop_length=0"], ["data.hop_length", ">= 1", "got 0"]),
    (sample, ["data.features=log_mel", "data.n_fft=1024", "data.n_mels=600"],
     ["data.n_mels", "513", "n_mels=600"]),
    (sample, ["data.features=log_mel", "data.n_mels=1", "evaluate.enabled=true"],
     ["evaluate.enabled", "log_mel"]),
]


@pytest.mark.parametrize("make_path,overrides,expected", BAD_INPUTS)
def test_bad_input_is_one_error_line_exit_2_and_nothing_written(tmp_path, make_path, overrides,
                                                                 expected):
    path = make_path(tmp_path)
    before = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    out = tmp_path / "run"
    result = run_script("run.py", f"data.path={path}", *overrides, f"hydra.run.dir={out}")
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert "Traceback" not in result.stdout + result.stderr
    assert not (out / "shapes.json").exists()
    assert not list(out.rglob("*.wav")) and not list(out.rglob("*.png"))
    if before:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
