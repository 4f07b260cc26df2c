"""A corpus spread over worker processes writes what the serial run writes, file for file, and
merges the rows (failures included) in the same sorted order; a worker that dies costs only its
file; corpus.figures_files limits figures and pages to the first files; bad corpus.* values are
one error line naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from convscope.config.convert import to_run_config
from convscope.config.schema import RunConfig
from convscope.errors import ConvscopeError
from convscope.files import partials
from convscope.corpus.run import run_corpus
from convscope.corpus.workers import run_in_workers
from tests.cli_harness import run_in_process
from tests.corpus_tasks import square_or_die
from tests.helpers import REPO

SECONDS = (0.31, 0.2, 0.27, 0.12, 0.24)  # each file its own length
BAD = "c_broken.wav"  # sorts between the good files: its row must keep its place
TIMINGS = ("compute_seconds", "real_time_factor")  # shapes.json's cost: wall time, not results


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus_workers") / "in"
    rng = np.random.default_rng(0)
    for index, seconds in enumerate(SECONDS):
        path = root / ("sub" if index % 2 else "") / f"{'abdef'[index]}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), 0.3 * rng.standard_normal(int(seconds * 8000)), 8000)
    broken = rng.standard_normal(2000)
    broken[700] = np.nan  # a float WAV holds it; the pipeline refuses it after reading the file
    soundfile.write(str(root / BAD), broken, 8000, subtype="FLOAT")
    return root


def corpus_config(path: Path, workers: int) -> RunConfig:
    return to_run_config({"data": {"path": str(path), "start": 0.0, "end": None, "sr": 8000},
                         "model": {"layers": [
                             {"type": "ConvTranspose1d", "in_channels": 1, "out_channels": 2,
                              "kernel_size": 3, "stride": 1, "padding": 1},
                             {"type": "ConvTranspose1d", "in_channels": 2, "out_channels": 3,
                              "kernel_size": 5, "stride": 2, "padding": 2,
                              "output_padding": 1}]},
                         "plots": {"enabled": False},  # figures cost seconds; pages stay on
                         "corpus": {"workers": workers, "figures_files": 2}})


def corpus_run(corpus: Path, out: Path, workers: int) -> list[dict]:
    cfg = corpus_config(corpus, workers)
    with pytest.raises(ConvscopeError, match=r"1 of 6 files failed \(first: c_broken.wav"):
        run_corpus(cfg, out, REPO)
    return json.loads((out / "summary.json").read_text())


def without_timings(shapes: dict) -> dict:
    return {**shapes, "cost": {k: v for k, v in shapes["cost"].items() if k not in TIMINGS}}


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory) -> dict[int, tuple[Path, list[dict]]]:
    """The same corpus run in this process (workers=1) and by two workers: {workers: (run
    dir, summary rows)}."""
    root = tmp_path_factory.mktemp("corpus_runs")
    return {workers: (root / str(workers), corpus_run(corpus, root / str(workers), workers))
            for workers in (1, 2)}


def test_workers_write_what_the_serial_run_writes_in_the_same_order(runs):
    (serial_dir, serial), (parallel_dir, parallel) = runs[1], runs[2]
    assert [row["file"] for row in serial] == sorted(row["file"] for row in serial)
    assert [row["status"] for row in serial].count("error") == 1
    for one, two in zip(serial, parallel, strict=True):
        assert {**one, "seconds": 0} == {**two, "seconds": 0}  # status and error included
        if one["status"] != "ok":
            assert "holds 1 non-finite samples" in one["error"]
            continue
        a, b = serial_dir / one["subdir"], parallel_dir / two["subdir"]
        assert without_timings(json.loads((a / "shapes.json").read_text())) == \
            without_timings(json.loads((b / "shapes.json").read_text()))
        assert (a / "metrics.json").read_text() == (b / "metrics.json").read_text()
        wavs = sorted(p.name for p in (a / "audio").iterdir())
        assert len(wavs) == 5  # input, 3 output channels, the evaluate stage's reference
        assert wavs == sorted(p.name for p in (b / "audio").iterdir())
        for name in wavs:
            samples, rate = soundfile.read(a / "audio" / name)
            assert rate > 0 and len(samples) > 0  # decodes
            assert (a / "audio" / name).read_bytes() == (b / "audio" / name).read_bytes()
    assert not partials(serial_dir) and not partials(parallel_dir)


def test_figures_and_pages_for_the_first_files_only_and_the_index_links_the_rest(runs):
    out, rows = runs[2]
    pages = [(out / row["subdir"] / "index.html").is_file() for row in rows]
    # figures_files=2: a.wav and the broken file (it fails before anything is written)
    assert [row["file"] for row in rows[:2]] == ["a.wav", BAD]
    assert pages == [True, False, False, False, False, False]
    assert all((out / row["subdir"] / "shapes.json").is_file() == (row["status"] == "ok")
               for row in rows)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "figures: first 2 files only" in index
    for row in rows[2:]:  # no page: its shapes.json and first output channel are linked
        assert f'href="{row["subdir"]}/shapes.json"' in index
        assert f'href="{row["subdir"]}/audio/layer1_ch0.wav"' in index


def test_a_worker_that_dies_costs_only_its_task(tmp_path):
    tasks = [3, 1, -1, 4, 1, 5, 9, 2, 6]
    results = run_in_workers(square_or_die, (tmp_path,), tasks, 2, tmp_path,
                             lambda task, error, seconds: ("crashed", task, error))
    assert results[:2] == [9, 1] and results[3:] == [t * t for t in tasks[3:]]
    assert results[2][:2] == ("crashed", -1) and "killed by SIGKILL" in results[2][2]
    assert not partials(tmp_path)  # the temp file the dead worker left is removed


@pytest.mark.parametrize("override,message", [
    ("corpus.workers=-1", "corpus.workers must be in [0, 4096]"),
    ("corpus.figures_files=-2", "corpus.figures_files must be in [-1, inf]"),
])
def test_bad_corpus_values_name_the_key(override, message, tmp_path):
    key, value = override.split("=")
    with pytest.raises(ConvscopeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        to_run_config({"model": {"layers": [{"type": "Tanh"}]},
                       "corpus": {key.split(".")[1]: int(value)}})
    # the command line (scripts/run.py, in this process): one error line, exit 2
    outcome = run_in_process([override, f"hydra.run.dir={tmp_path / 'run'}"])
    assert outcome.code == 2
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {message}"), outcome.stderr


def test_weights_once_at_the_root_equal_to_each_files_own_run(runs, corpus, tmp_path):
    """Every file's stack is the same seeded build: the root weights.pt is what a single run of
    any of the files writes, and no file's folder holds a copy."""
    import torch

    from convscope.pipeline.single import run

    out, rows = runs[2]
    shared = torch.load(out / "weights.pt", weights_only=True)
    ok = [row for row in rows if row["status"] == "ok"]
    assert not any((out / row["subdir"] / "weights.pt").exists() for row in rows)
    for row in (ok[0], ok[-1]):  # two lengths
        cfg = corpus_config(corpus / row["file"], workers=1)
        own = torch.load(run(cfg, tmp_path / row["subdir"], REPO).out_dir / "weights.pt",
                         weights_only=True)
        assert own.keys() == shared.keys()
        assert all(torch.equal(own[key], shared[key]) for key in own)
