"""data.features=precomputed: frames read from a .npy/.pt file are the stack input.

The oracle: a log mel computed by convscope itself, saved, and run through the hifigan_v1 preset
as precomputed frames, must give the output of the same preset run on the audio with
data.features=log_mel (the same frames, computed in the run). Bad files are one line each.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import convscope
from convscope.audio.features import compute_features
from convscope.audio.segment import load_segment
from convscope.config.schema import DataConfig
from convscope.errors import ConvscopeError
from convscope.resources import bundled
from tests.helpers import run_script

# the hifigan_v1 preset sets this frontend itself; the segment is a tenth of a second
SEGMENT = {"start": 2.0, "end": 2.1}
QUIET = ["audio.subtype=FLOAT", "plots.enabled=false", "report=false"]
PRECOMPUTED = ["data.features=precomputed", "data.frame_rate=22050/256"]


def hifigan_log_mel() -> np.ndarray:
    """(80, T) frames of hifigan_v1's frontend, computed by convscope."""
    data = DataConfig(path=bundled("sample.wav"), features="log_mel", sr=22050, n_fft=1024,
                      hop_length=256, win_length=1024, n_mels=80, fmin=0.0, fmax=8000.0,
                      center=False, **SEGMENT)
    return compute_features(load_segment(data, Path.cwd()), data).samples


def output_wav(run_dir: Path) -> np.ndarray:
    shapes = json.loads((run_dir / "shapes.json").read_text())
    (name,) = [f for f in shapes["audio"]["files"] if f != "audio/input.wav"]
    samples = soundfile.read(str(run_dir / name), dtype="float32")[0]
    return samples / shapes["audio"]["gain"]


def test_a_saved_log_mel_gives_the_output_of_the_run_on_the_audio(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frames = hifigan_log_mel()
    np.save(tmp_path / "mel.npy", frames)
    torch.save(torch.from_numpy(frames)[None], tmp_path / "mel.pt")  # [1, C, T]

    convscope.run(["model=hifigan_v1", *(f"data.{k}={v}" for k, v in SEGMENT.items()), *QUIET],
                  out_dir="audio_run")
    convscope.run(["model=hifigan_v1", "data.path=mel.npy", *PRECOMPUTED, *QUIET],
                  out_dir="npy_run")
    convscope.run(["model=hifigan_v1", "data.path=mel.pt", "data.features=precomputed",
                   "data.frame_rate=86.1328125", *QUIET], out_dir="pt_run")

    expected = output_wav(tmp_path / "audio_run")
    assert expected.shape == (256 * frames.shape[-1],) and np.std(expected) > 1e-3
    for run_dir in ("npy_run", "pt_run"):
        np.testing.assert_allclose(output_wav(tmp_path / run_dir), expected, rtol=1e-5,
                                   atol=1e-5 * np.abs(expected).max())
        shapes = json.loads((tmp_path / run_dir / "shapes.json").read_text())
        assert shapes["input"]["shape"] == [1, 80, frames.shape[-1]]
        assert shapes["input"]["sample_rate_fraction"] == "11025/128"
        assert shapes["input"]["target"] is None and "no target audio" in shapes["input"][
            "no_target"]
        assert not (tmp_path / run_dir / "audio" / "input.wav").exists()
        assert "metrics" not in json.dumps(shapes.get("evaluate", {}))


def write_frames(tmp_path: Path, name: str, frames) -> str:
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, frames)
    else:
        torch.save(frames, path)
    return f"data.path={path}"


def refused(overrides: list[str], out_dir: Path) -> str:
    with pytest.raises(ConvscopeError) as caught:
        convscope.run([*overrides, *QUIET], out_dir=str(out_dir))
    message = str(caught.value)
    assert "\n" not in message
    assert not (out_dir / "audio").exists() and not (out_dir / "shapes.json").exists()
    return message


@pytest.mark.parametrize("name, frames, expected", [
    ("flat.npy", np.zeros(100, np.float32), "holds float32 of shape [100]; precomputed frames "
                                            "are float [C, T] or [1, C, T]"),
    ("ints.npy", np.zeros((80, 4), np.int64), "holds int64 of shape [80, 4]"),
    ("batch.npy", np.zeros((2, 80, 4), np.float32), "holds float32 of shape [2, 80, 4]"),
    ("nan.npy", np.where(np.eye(80, 4) > 0, np.nan, 0).astype(np.float32),
     "holds 4 non-finite value(s) (NaN or inf) of 320"),
    ("inf.pt", torch.full((1, 80, 4), float("inf")), "holds 320 non-finite value(s)"),
    ("narrow.npy", np.zeros((100, 4), np.float32),
     "holds 100 channels x 4 frames, but the first layer (Conv1d) takes in_channels=80"),
])
def test_bad_frames_are_one_error_line(tmp_path, name, frames, expected):
    message = refused(["model=hifigan_v1", write_frames(tmp_path, name, frames), *PRECOMPUTED],
                      tmp_path / "out")
    assert message.startswith("data.path: ")
    assert expected in message


def test_a_users_module_names_its_first_conv_and_the_rate_is_required(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "decoder.py").write_text(
        "from torch import nn\n\n\nclass Decoder(nn.Sequential):\n    def __init__(self):\n"
        "        super().__init__(nn.ConvTranspose1d(64, 1, 8, 4, 2))\n")
    data = write_frames(tmp_path, "latents.npy", np.ones((1, 32, 10), np.float32))
    message = refused(["model=module", "model.target=decoder.py:Decoder", data, *PRECOMPUTED],
                      tmp_path / "out")
    assert message.endswith("holds 32 channels x 10 frames, but decoder.py:Decoder's first "
                            "conv takes in_channels=64")
    message = refused(["model=module", "model.target=decoder.py:Decoder", data,
                       "data.features=precomputed"], tmp_path / "out")
    assert message.startswith("data.frame_rate: data.features=precomputed needs the frames' rate")

    # the right width runs; the CLI words a bad rate as one error line, exit 2
    data = write_frames(tmp_path, "latents.npy", np.ones((64, 10), np.float32))
    convscope.run(["model=module", "model.target=decoder.py:Decoder", data,
                   "data.features=precomputed", "data.frame_rate=100"], out_dir="ok")
    shapes = json.loads((tmp_path / "ok" / "shapes.json").read_text())
    assert shapes["output"]["shape"] == [1, 1, 40] and shapes["output"]["sample_rate"] == 400
    # the figures and the report are drawn without target audio, and the page says there is none
    assert (tmp_path / "ok" / "plots" / "spectrogram.png").is_file()
    assert "none: precomputed frames" in (tmp_path / "ok" / "index.html").read_text()
    result = run_script("run.py", "model=module", "model.target=decoder.py:Decoder", data,
                        "data.features=precomputed", "data.frame_rate=22050/0",
                        "hydra.run.dir=bad", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: data.frame_rate must be a number or a fraction like 22050/256, got '22050/0'"]


def test_a_frame_rate_without_precomputed_frames_is_refused(tmp_path):
    message = refused(["model=hifigan_v1", "data.frame_rate=100"], tmp_path / "out")
    assert message == ("data.frame_rate is only read with data.features=precomputed (frames from "
                       "a file); data.features=log_mel comes at data.sr / data.hop_length")
