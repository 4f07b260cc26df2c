"""tensorboard=true and `convscope tensorboard`: the event files read back with TensorBoard's own
EventAccumulator and compared with what the run dir holds (WAVs, PNGs, shapes.json,
metrics.json)."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from convscope.board.export import MAX_AUDIO_SECONDS, export_run
from convscope.commands_main import main
from convscope.text import shape_text
from tests.helpers import REPO, run_script

EVERYTHING = {"audio": 0, "images": 0, "tensors": 0, "scalars": 0}  # 0: keep every event
INSTALL_HINT = "pip install 'convscope[tensorboard]'"


def events(log_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(log_dir), size_guidance=EVERYTHING)
    accumulator.Reload()
    return accumulator


def text_of(accumulator: EventAccumulator, tag: str) -> str:
    [event] = accumulator.Tensors(tag)
    return event.tensor_proto.string_val[0].decode("utf-8")


def event_files(log_dir) -> list:
    return sorted(p for p in log_dir.iterdir() if "tfevents" in p.name)


def numbers(prefix: str, value) -> dict[str, float]:
    """Every number of a JSON section by its slash-joined path, as the scalars are tagged."""
    if isinstance(value, dict):
        return {tag: v for key, inner in value.items()
                for tag, v in numbers(f"{prefix}/{key}", inner).items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {prefix: value}
    return {}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """The issue's own command: the sinc stack on the spoken clip, with tensorboard=true."""
    out = tmp_path_factory.mktemp("tb") / "run"
    proc = run_script("run.py", "model=sinc_x2", "data=speech", "tensorboard=true",
                      f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_every_wav_is_an_audio_event_at_its_rate_byte_for_byte(run_dir):
    board = events(run_dir / "tensorboard")
    shapes = json.loads((run_dir / "shapes.json").read_text())
    wavs = sorted((run_dir / "audio").glob("*.wav"))
    assert {w.stem for w in wavs} == {"input", "layer0_ch0", "reference"}
    assert sorted(board.Tags()["audio"]) == [f"audio/{w.stem}" for w in wavs]
    for wav in wavs:
        [event] = board.Audio(f"audio/{wav.stem}")
        rate = shapes["input" if wav.stem == "input" else "output"]["sample_rate"]
        assert event.sample_rate == rate == soundfile.info(str(wav)).samplerate
        assert event.length_frames == soundfile.info(str(wav)).frames
        assert event.content_type == "audio/wav"
        assert event.encoded_audio_string == wav.read_bytes()
    assert shapes["output"]["sample_rate"] == 2 * shapes["input"]["sample_rate"]


def test_every_figure_is_an_image_event(run_dir):
    board = events(run_dir / "tensorboard")
    pngs = sorted((run_dir / "plots").glob("*.png"))
    assert len(pngs) >= 3  # the layer, the spectrogram and the spectrum against soxr
    assert sorted(board.Tags()["images"]) == [f"plots/{p.stem}" for p in pngs]
    for png in pngs:
        [event] = board.Images(f"plots/{png.stem}")
        assert event.encoded_image_string == png.read_bytes()
        assert (event.width, event.height) == Image.open(png).size


def test_layer_table_formulas_and_alignment_are_text_events(run_dir):
    board = events(run_dir / "tensorboard")
    shapes = json.loads((run_dir / "shapes.json").read_text())
    table = text_of(board, "layers/table").splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]
    assert len(rows) == len(shapes["layers"])
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    for row, layer in zip(rows, shapes["layers"]):
        cells = dict(zip(header, row))
        assert cells["type"] == layer["type"]
        assert cells["input"] == shape_text(layer["input_shape"])
        assert cells["output"] == shape_text(layer["output_shape"])
        assert cells["params"].replace(",", "") == str(layer["params"])
    formulas = text_of(board, "layers/formulas")
    assert re.findall(r"`(.*)`", formulas) == [layer["formula"] for layer in shapes["layers"]]
    alignment = text_of(board, "alignment")
    shown = json.loads(alignment.split("```json\n", 1)[1].split("\n```", 1)[0])
    assert shown == shapes["alignment"]
    assert alignment.startswith(f"expected {shapes['alignment']['expected']} samples")


def test_metrics_cost_and_latency_are_scalars(run_dir):
    board = events(run_dir / "tensorboard")
    shapes = json.loads((run_dir / "shapes.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    expected = {**numbers("metrics", metrics), **numbers("cost", shapes["cost"]),
                **numbers("latency", shapes["latency"])}
    assert "metrics/snr_db" in expected and "cost/macs" in expected
    assert sorted(board.Tags()["scalars"]) == sorted(expected)
    for tag, value in expected.items():
        [event] = board.Scalars(tag)
        assert event.value == pytest.approx(value, rel=1e-6), tag  # stored as float32


def test_the_run_record_owns_the_events(run_dir):
    """Written before the run is sealed: replace=true may remove them like the run's own files."""
    record = json.loads((run_dir / ".convscope").read_text())
    assert [f"tensorboard/{p.name}" for p in event_files(run_dir / "tensorboard")] == [
        name for name in record["files"] if name.startswith("tensorboard/")]


def test_convscope_tensorboard_reexports_a_run_replacing_its_events(run_dir, tmp_path, capsys):
    copy = tmp_path / "copy"
    for path in [run_dir / "shapes.json", run_dir / "metrics.json",
                 *run_dir.joinpath("audio").iterdir(), *run_dir.joinpath("plots").iterdir()]:
        target = copy / path.relative_to(run_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    for _ in range(2):  # twice: the second export replaces the first, no run shown twice
        main(["tensorboard", str(copy)])
    assert len(event_files(copy / "tensorboard")) == 1
    assert events(copy / "tensorboard").Tags()["audio"] == events(run_dir / "tensorboard").Tags()[
        "audio"]
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{copy}: 1 run exported; view them: tensorboard --logdir {copy}")


def test_exporting_a_finished_run_keeps_it_replaceable(tmp_path, capsys):
    """The events join the run's .convscope record, so replace=true still takes the dir."""
    out = tmp_path / "run"
    first = run_script("run.py", "plots.enabled=false", f"hydra.run.dir={out}")
    assert first.returncode == 0, first.stderr[-3000:]
    main(["tensorboard", str(out)])
    record = json.loads((out / ".convscope").read_text())
    assert [f"tensorboard/{p.name}" for p in event_files(out / "tensorboard")] == [
        name for name in record["files"] if name.startswith("tensorboard/")]
    assert record["state"] == "finished"
    again = run_script("run.py", "plots.enabled=false", "replace=true", f"hydra.run.dir={out}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert not (out / "tensorboard").exists()  # replaced with the run's own files, as recorded


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    sweep = tmp_path_factory.mktemp("tb_sweep") / "sweep"
    proc = run_script("run.py", "-m", "model=sinc_x2", "data=tone",
                      "evaluate.reference=soxr_hq,fft", "plots.enabled=false", "tensorboard=true",
                      f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


def test_a_sweep_has_a_run_per_job_and_an_hparams_session_per_job(sweep_dir):
    for job, reference in (("0", "soxr_hq"), ("1", "fft")):
        metrics = json.loads((sweep_dir / job / "metrics.json").read_text())
        assert metrics["reference"] == reference
        own = events(sweep_dir / job / "tensorboard")
        assert "audio/reference" in own.Tags()["audio"]
        session = events(sweep_dir / "tensorboard" / "hparams" / job)
        start = plugin_data_pb2.HParamsPluginData.FromString(
            session.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        ).session_start_info
        overrides = (sweep_dir / job / ".hydra" / "overrides.yaml").read_text()
        assert f"evaluate.reference={reference}" in overrides
        assert start.hparams["evaluate.reference"].string_value == reference
        assert start.hparams["model"].string_value == "sinc_x2"
        assert sorted(session.Tags()["scalars"]) == sorted(numbers("metrics", metrics))
        for tag, value in numbers("metrics", metrics).items():
            [event] = session.Scalars(tag)
            assert event.value == pytest.approx(value, rel=1e-6), tag


def test_a_corpus_has_a_run_per_file(tmp_path, make_wav):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a.wav", "b.wav"):
        make_wav(f"corpus/{name}", seconds=0.25, sr=8000)
    out = tmp_path / "run"
    proc = run_script("run.py", f"data.path={corpus}", "data.start=0", "data.end=null",
                      "data.sr=8000", "corpus.workers=1", "plots.enabled=false",
                      "evaluate.enabled=false", "tensorboard=true", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("a.wav", "b.wav"):
        board = events(out / name / "tensorboard")
        wavs = sorted((out / name / "audio").glob("*.wav"))
        assert sorted(board.Tags()["audio"]) == [f"audio/{w.stem}" for w in wavs]
        for wav in wavs:
            assert board.Audio(f"audio/{wav.stem}")[0].encoded_audio_string == wav.read_bytes()


def test_a_long_wav_is_cut_to_its_first_minute(tmp_path):
    run = tmp_path / "long"
    (run / "audio").mkdir(parents=True)
    rate = 1000  # a small rate keeps a 70 s file small
    samples = np.random.default_rng(0).uniform(-1.5, 1.5, size=70 * rate)  # float WAVs pass 1
    soundfile.write(str(run / "audio" / "input.wav"), samples, rate, subtype="FLOAT")
    export_run(run)
    [event] = events(run / "tensorboard").Audio("audio/input")
    kept = int(MAX_AUDIO_SECONDS * rate)
    assert event.length_frames == kept
    decoded, decoded_rate = soundfile.read(io.BytesIO(event.encoded_audio_string))
    assert decoded_rate == rate
    np.testing.assert_array_equal(decoded, samples[:kept].astype(np.float32))


HIDDEN_TENSORBOARD = ("import sys; sys.modules['tensorboard'] = None; "  # find_spec -> None
                      "sys.argv = ['convscope', *sys.argv[1:]]; "
                      "from convscope.commands_main import main; main()")


@pytest.mark.parametrize("args", [["run", "tensorboard=true", "plots.enabled=false"],
                                  ["tensorboard"]])
def test_without_the_package_one_error_line_says_how_to_install_it(tmp_path, args):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", HIDDEN_TENSORBOARD, *args,
                           f"hydra.run.dir={out}" if args[0] == "run" else str(tmp_path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 2, proc.stderr[-2000:]
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and INSTALL_HINT in line
    assert not (out / "shapes.json").exists()  # refused before the run did any work


def free_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tensorboard_json(port: int, route: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/data/{route}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


@pytest.mark.slow
def test_a_real_tensorboard_serves_the_audio_images_and_hparams(run_dir, sweep_dir, tmp_path):
    """`tensorboard --logdir` on loopback, as a user opens it: its data API lists the run's audio
    and figures, and the sweep's HParams table with the setting that differs between the jobs."""
    logdir = tmp_path / "logdir"
    logdir.mkdir()
    (logdir / "run").symlink_to(run_dir)
    (logdir / "sweep").symlink_to(sweep_dir)
    port = free_local_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "tensorboard"), "--logdir",
                               str(logdir), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, runs = time.monotonic() + 90, []
        while time.monotonic() < deadline and "run/tensorboard" not in runs:
            time.sleep(1)
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            try:
                runs = tensorboard_json(port, "runs")
            except OSError:
                continue  # not listening yet, or still loading the event files
        assert "run/tensorboard" in runs
        audio = tensorboard_json(port, "plugin/audio/tags")["run/tensorboard"]
        assert sorted(audio) == [f"audio/{w.stem}" for w in sorted(run_dir.glob("audio/*.wav"))]
        images = tensorboard_json(port, "plugin/images/tags")["run/tensorboard"]
        assert sorted(images) == [f"plots/{p.stem}" for p in sorted(run_dir.glob("plots/*.png"))]
        experiment = tensorboard_json(port, "plugin/hparams/experiment", {"experimentName": ""})
        differs = {info["name"]: info["differs"] for info in experiment["hparamInfos"]}
        assert differs["evaluate.reference"] is True and differs["model"] is False
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_learn_exports_metrics_before_and_after(tmp_path):
    out = tmp_path / "learn"
    proc = run_script("learn.py", "model=artifact_k4s2", "learn.steps=20", "learn.progress=false",
                      "data.end=1", "tensorboard=true", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    board = events(out / "tensorboard")
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"metrics/before/snr_db", "metrics/after/snr_db"} <= set(board.Tags()["scalars"])
    for tag, value in numbers("metrics", metrics).items():
        assert board.Scalars(tag)[0].value == pytest.approx(value, rel=1e-6), tag
    pngs = sorted((out / "plots").glob("*.png"))
    assert "plots/loss" in board.Tags()["images"]
    assert sorted(board.Tags()["images"]) == [f"plots/{p.stem}" for p in pngs]


def test_chunks_exports_its_figure_and_refuses_without_one(tmp_path):
    out = tmp_path / "chunks"
    proc = run_script("chunks.py", "model=sinc_x2", "tensorboard=true", f"hydra.run.dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [event] = events(out / "tensorboard").Images("plots/chunk_errors")
    assert event.encoded_image_string == (out / "plots" / "chunk_errors.png").read_bytes()
    refused = run_script("chunks.py", "model=sinc_x2", "tensorboard=true", "plots.enabled=false",
                         f"hydra.run.dir={tmp_path / 'none'}")
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: tensorboard=true: the chunk debugger's events are its figure, "
        "plots/chunk_errors.png, which plots.enabled=false turns off"]
