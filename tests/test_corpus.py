"""Corpora: a folder or glob in data.path runs every file into its own subfolder, bad files are
reported without stopping the good ones, and shards split the sorted list deterministically."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from convscope.config.convert import to_run_config
from convscope.config.schema import RunConfig
from convscope.errors import ConvscopeError
from convscope.corpus.run import is_corpus, list_corpus, run_corpus, safe_names, shard
from tests.helpers import REPO, run_script

TWO_LAYERS = [{"type": "ConvTranspose1d", "in_channels": 1, "out_channels": 2, "kernel_size": 4,
               "stride": 2, "padding": 1}]


def write_tone(path: Path, seconds: float, sr: int = 8000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    soundfile.write(str(path), 0.3 * np.sin(2 * np.pi * 440 * t), sr)
    return path


@pytest.fixture
def corpus(tmp_path) -> Path:
    root = tmp_path / "corpus"
    write_tone(root / "a.wav", 0.5)
    write_tone(root / "speaker one" / "take.wav", 0.25)
    write_tone(root / "speaker_two" / "take.flac", 0.3)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 20)
    (root / "notes.txt").write_text("not audio")
    return root


def corpus_config(path: Path, **data) -> RunConfig:
    cfg = to_run_config({"data": {"path": str(path), "start": 0.0, "end": None, "sr": 8000, **data},
                         "model": {"layers": TWO_LAYERS}, "report": False,
                         "plots": {"enabled": False},
                         "corpus": {"workers": 1}})  # workers: tests/test_corpus_workers.py
    return cfg


def test_folder_lists_audio_files_sorted_with_safe_unique_names(corpus):
    files = list_corpus(str(corpus), REPO)
    assert [f.relative for f in files] == ["a.wav", "broken.wav", "speaker one/take.wav",
                                           "speaker_two/take.flac"]
    assert [f.subdir for f in files] == ["a.wav", "broken.wav", "speaker_one__take.wav",
                                         "speaker_two__take.flac"]
    assert safe_names(["a b/c.wav", "a_b/c.wav", "../x.wav"]) == ["a_b__c.wav", "a_b__c.wav-2",
                                                                 "__x.wav"]


def test_glob_matches_relative_to_its_fixed_prefix(corpus):
    pattern = str(corpus / "*" / "take.*")
    assert is_corpus(pattern, REPO) and is_corpus(str(corpus), REPO)
    assert not is_corpus(str(corpus / "a.wav"), REPO)
    assert [f.relative for f in list_corpus(pattern, REPO)] == ["speaker one/take.wav",
                                                                "speaker_two/take.flac"]


def test_good_files_are_processed_and_the_bad_one_reported(corpus, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConvscopeError, match=r"1 of 4 files failed \(first: broken.wav: .*"
                                             r"summary: .*summary.csv"):
        run_corpus(corpus_config(corpus), out, REPO)
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["file"], r["status"]) for r in rows] == [
        ("a.wav", "ok"), ("broken.wav", "error"), ("speaker one/take.wav", "ok"),
        ("speaker_two/take.flac", "ok")]
    assert rows[0]["duration"] == "0.5" and rows[0]["output_shape"] == "1x2x8000"
    assert "cannot decode" in rows[1]["error"]
    for row in rows:
        assert (out / row["subdir"] / "shapes.json").exists() == (row["status"] == "ok")
    assert not (out / "index.html").exists()  # report=false: no corpus index either
    assert json.loads((out / "summary.json").read_text())[2]["output_shape"] == [1, 2, 4000]


def test_shards_split_the_sorted_list_without_overlap(corpus, tmp_path):
    files = list_corpus(str(corpus), REPO)
    parts = [shard(files, i, 3) for i in range(3)]
    assert sorted(f.relative for part in parts for f in part) == [f.relative for f in files]
    assert [f.relative for f in parts[1]] == ["broken.wav"]
    outcomes = run_corpus(corpus_config(corpus, shard=0, num_shards=3), tmp_path / "s0", REPO)
    assert [o.file for o in outcomes] == ["a.wav", "speaker_two/take.flac"]


@pytest.mark.parametrize("shard_index,count", [(3, 3), (-1, 2), (0, 0)])
def test_bad_shards_name_the_keys(shard_index, count):
    with pytest.raises(ConvscopeError, match="data.shard must satisfy 0 <= data.shard < "
                                             "data.num_shards"):
        corpus_config(REPO, shard=shard_index, num_shards=count)


def test_a_folder_without_audio_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConvscopeError, match="is a directory with no audio files in it"):
        run_corpus(corpus_config(tmp_path / "empty"), tmp_path / "out", REPO)


def test_script_exits_2_with_one_error_line_and_keeps_the_good_outputs(corpus, tmp_path):
    out = tmp_path / "script_run"
    proc = run_script("run.py", f"data.path={corpus}", "data.start=0", "data.end=null",
                      "plots.enabled=false", "report=false", "evaluate.enabled=false",
                      f"hydra.run.dir={out}")
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "1 of 4 files failed" in errors[0]
    assert str(out / "summary.csv") in errors[0]
    assert "Traceback" not in proc.stderr
    assert (out / "a.wav" / "audio" / "layer1_ch0.wav").exists()
