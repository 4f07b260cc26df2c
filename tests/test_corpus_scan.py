"""Corpus scans end and take each file once (issue 24, items 3 and 6): symlinks to ancestors,
several paths to one file, symlink loops, pseudo-filesystems, and patterns that reach too far."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import pytest

from convscope.errors import ConvscopeError
from convscope.corpus import walk as corpus_walk
from convscope.corpus.run import run_corpus, scan_corpus, skipped_text
from tests.helpers import REPO
from tests.test_corpus import corpus_config, write_tone

pytestmark = pytest.mark.skipif(os.name != "posix", reason="symlinks and /proc are POSIX's")


def relatives(data_path) -> list[str]:
    return [f.relative for f in scan_corpus(str(data_path), REPO).files]


@pytest.fixture
def looped(tmp_path):
    """c/d/x.wav, with c/d/up -> c: Python's glob gave x.wav 41 times (up/d/up/d/...)."""
    write_tone(tmp_path / "c" / "d" / "x.wav", 0.1)
    (tmp_path / "c" / "d" / "up").symlink_to(tmp_path / "c")
    return tmp_path / "c"


@pytest.mark.parametrize("pattern,relative", [
    ("**/*.wav", "d/x.wav"), ("**/x.wav", "d/x.wav"), ("*/**/*.wav", "d/x.wav"),
    ("d/**", "x.wav"),  # relative to the pattern's fixed part, c/d
])
def test_a_glob_through_a_link_to_an_ancestor_takes_the_file_once(looped, pattern, relative):
    assert relatives(looped / pattern) == [relative]


def test_a_folder_reached_by_two_paths_gives_each_file_once(tmp_path):
    root = tmp_path / "corpus"
    write_tone(root / "real" / "x.wav", 0.1)
    write_tone(root / "real" / "y.wav", 0.1)
    (root / "alias").symlink_to(root / "real")  # a sibling link: two paths to one folder
    (root / "links").mkdir()
    (root / "links" / "again.wav").symlink_to(root / "real" / "y.wav")  # a link to one file
    (root / "real" / "hard.wav").hardlink_to(root / "real" / "x.wav")  # one file, two names
    expected = ["alias/hard.wav", "alias/y.wav"]  # each file under its first path, sorted
    assert relatives(root) == expected
    assert relatives(root / "**" / "*.wav") == expected
    # a pattern that reaches the file only through one of its paths still takes it
    assert relatives(root / "real" / "*.wav") == ["hard.wav", "y.wav"]
    assert relatives(root / "links" / "*.wav") == ["again.wav"]


def test_a_symlink_loop_between_two_folders_ends(tmp_path):
    write_tone(tmp_path / "a" / "one.wav", 0.1)
    write_tone(tmp_path / "b" / "two.wav", 0.1)
    (tmp_path / "a" / "to_b").symlink_to(tmp_path / "b")
    (tmp_path / "b" / "to_a").symlink_to(tmp_path / "a")
    assert relatives(tmp_path) == ["a/one.wav", "a/to_b/two.wav"]
    assert relatives(tmp_path / "**" / "*.wav") == ["a/one.wav", "a/to_b/two.wav"]


@pytest.mark.parametrize("pseudo", ["/proc", "/sys", "/dev"])
def test_pseudo_filesystems_are_skipped_and_said_once(tmp_path, pseudo, caplog):
    if not os.path.isdir(pseudo):
        pytest.skip(f"no {pseudo} here")
    write_tone(tmp_path / "x.wav", 0.25)
    (tmp_path / "kernel").symlink_to(pseudo)
    scan = scan_corpus(str(tmp_path), REPO)
    assert [f.relative for f in scan.files] == ["x.wav"] and scan.pseudo == [pseudo]
    assert skipped_text(scan) == f"skipped 1 pseudo-filesystems, not audio ({pseudo})"
    assert scan_corpus(str(tmp_path / "**" / "*"), REPO).pseudo == [pseudo]
    with caplog.at_level(logging.INFO, logger="convscope"):
        run_corpus(corpus_config(tmp_path), tmp_path / "out", REPO)
    said = [r.getMessage() for r in caplog.records if pseudo in r.getMessage()]
    assert said == [f"corpus: skipped 1 pseudo-filesystems, not audio ({pseudo})"]


@pytest.mark.skipif(not os.access("/dev/shm", os.W_OK), reason="no writable /dev/shm here")
def test_dev_shm_is_memory_not_devices_and_is_scanned(tmp_path):
    with tempfile.TemporaryDirectory(dir="/dev/shm") as shm:
        write_tone(Path(shm) / "kept.wav", 0.1)
        (tmp_path / "fast").symlink_to(shm)
        scan = scan_corpus(str(tmp_path), REPO)
        assert ([f.relative for f in scan.files], scan.pseudo) == (["fast/kept.wav"], [])


def test_a_glob_inside_a_pseudo_filesystem_matches_nothing():
    if not os.path.isdir("/proc/self"):
        pytest.skip("no /proc here")
    scan = scan_corpus("/proc/**/*", REPO)
    assert (scan.files, scan.pseudo) == ([], ["/proc"])


def test_a_scan_past_the_limit_is_one_error_naming_data_path(tmp_path, monkeypatch):
    for i in range(30):
        (tmp_path / f"f{i // 10}").mkdir(exist_ok=True)
        (tmp_path / f"f{i // 10}" / f"{i}.wav").write_bytes(b"")
    monkeypatch.setattr(corpus_walk, "MAX_SCANNED_ENTRIES", 30)  # the tree holds 37
    assert len(relatives(tmp_path / "f0")) == 10  # within the limit: scanned as before
    for data_path in (str(tmp_path), str(tmp_path / "**" / "*.wav")):
        with pytest.raises(ConvscopeError) as caught:
            scan_corpus(data_path, REPO)
        message = str(caught.value)
        assert message.startswith(f"data.path: {data_path} reaches more than 30 folders and "
                                  "files (stopped in ") and "\n" not in message


@pytest.mark.parametrize("data_path", ["/**", "/**/*.wav", "/*.wav", "/"])
def test_the_root_of_the_filesystem_is_refused_not_walked(data_path):
    with pytest.raises(ConvscopeError) as caught:
        scan_corpus(data_path, REPO)
    assert str(caught.value) == (f"data.path: {data_path} is a corpus of the whole filesystem, "
                                 "from /; point data.path at the folder that holds the audio")


def test_a_long_scan_on_a_terminal_says_how_far_it_got(tmp_path, monkeypatch, capsys):
    for i in range(30):
        (tmp_path / f"f{i // 10}").mkdir(exist_ok=True)
        (tmp_path / f"f{i // 10}" / f"{i}.wav").write_bytes(b"")
    monkeypatch.setattr(corpus_walk, "PROGRESS_S", 0.0)  # every folder, for the test
    monkeypatch.setattr(corpus_walk.sys.stderr, "isatty", lambda: True)
    assert len(relatives(tmp_path)) == 30
    err = capsys.readouterr().err
    assert "\rcorpus: scanning, 4 folders and files seen, 0 audio files so far" in err
    assert "\rcorpus: scanning, 37 folders and files seen, 20 audio files so far" in err
    assert err.endswith("\n")
    monkeypatch.setattr(corpus_walk.sys.stderr, "isatty", lambda: False)  # a pipe, a log
    relatives(tmp_path)
    assert "scanning" not in capsys.readouterr().err
