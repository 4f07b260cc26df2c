"""Paths the OS refuses, as one line naming the path: inputs (~user, too long, FIFO, device, symlink
loop, permissions), corpus scans (convscope's own run dirs, artifact-like names, empty), run dirs
(an existing file, unwritable, a full disk) and OSError at the entry.

Most cases call the library directly; a few run scripts/run.py for the whole path to stderr. Full
disks are real kernel failures, not a filled disk: /dev/full (ENOSPC) and a file size limit
(RLIMIT_FSIZE, EFBIG: what `ulimit -f` sets), which stop a write part way as a full disk does.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import resource
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile

from convscope.audio.blockio import FloatWav, WavWriters
from convscope.audio.segment import load_segment, resolve_path
from convscope.audio.wav import sndfile_write_errors, write_wav
from convscope.cli import reports_errors, run_entry
from convscope.config.convert import to_run_config
from convscope.config.schema import DataConfig
from convscope.errors import ConvscopeError
from convscope.files import atomic_path, write_text
from convscope.oserrors import describe_os_error
from convscope.corpus.run import is_corpus, list_corpus, run_corpus, safe_names, scan_corpus
from convscope.rundir import RunDir
from convscope.stack.user_module import import_target
from tests.helpers import REPO

TONE = REPO / "data" / "tone.wav"
ONE_LAYER = [{"type": "ConvTranspose1d", "in_channels": 1, "out_channels": 1, "kernel_size": 4,
              "stride": 2, "padding": 1}]


def load_error(path: str, base: Path) -> str:
    """load_segment's ConvscopeError for `path`, checked to be one line."""
    with pytest.raises(ConvscopeError) as caught:
        load_segment(DataConfig(path=path, start=0.0, end=None), base)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("data.path")
    return message


def leftovers(folder: Path) -> list[str]:
    """Every file under folder: after a failed write there must be none (no temp, no half file)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --- unreadable as root too ----------------------------------------------------------------------

CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


@contextmanager
def permissions_enforced():
    """File permissions apply to this thread, also as root (CI may run as root, which reads
    anything): root drops the two capabilities that bypass them from its effective set and
    raises them again afterwards; a plain user needs nothing."""
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        pytest.skip("running as root and capget() failed: cannot make permissions apply to root")
    saved = data[0].effective
    data[0].effective &= ~((1 << CAP_DAC_OVERRIDE) | (1 << CAP_DAC_READ_SEARCH))
    if libc.capset(ctypes.byref(header), data) != 0:
        pytest.skip("running as root and capset() failed: cannot make permissions apply to root")
    try:
        yield
    finally:
        data[0].effective = saved
        libc.capset(ctypes.byref(header), data)


@contextmanager
def file_size_limit(limit: int):
    """Writes past `limit` bytes fail with EFBIG, as they fail with ENOSPC on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills us
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


# --- input paths ---------------------------------------------------------------------------------

def test_unknown_user_and_empty_path_name_data_path(tmp_path):
    assert load_error("~no_such_user_x/a.wav", tmp_path) == (
        "data.path: cannot expand '~no_such_user_x/a.wav': there is no user 'no_such_user_x' on "
        "this machine; write the path without ~")
    for empty in ("", "  "):
        with pytest.raises(ConvscopeError, match=r"^data.path is empty: give an audio file"):
            resolve_path(empty, tmp_path)
        with pytest.raises(ConvscopeError, match=r"^data.path is empty"):
            is_corpus(empty, tmp_path)  # the first thing a run asks: it never becomes a corpus


def test_unknown_user_in_model_paths_names_the_key(tmp_path):
    with pytest.raises(ConvscopeError, match=r"^model.target: cannot expand '~no_such_user_x/"):
        import_target("~no_such_user_x/m.py:Net", tmp_path)


def test_name_over_the_filesystem_limit_says_which_name_and_the_limit(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    name = "a" * (limit + 10) + ".wav"
    message = load_error(str(tmp_path / name), tmp_path)
    assert f"a name in it is {limit + 14} bytes, over the filesystem's limit of {limit}" in message
    assert str(tmp_path / name) in message


def test_fifo_and_device_are_named_as_such_and_never_read(tmp_path):
    fifo = tmp_path / "live.wav"
    os.mkfifo(fifo)
    def blocked(*_):
        raise TimeoutError("reading the FIFO blocked")

    # opening a FIFO with no writer would block: fail rather than hang
    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(20)
    try:
        message = load_error(str(fifo), tmp_path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert message == (f"data.path: {fifo} is a FIFO (named pipe), not a regular audio file; "
                       "save the audio to a file and give that")
    assert "is a character device, not a regular audio file" in load_error("/dev/zero", tmp_path)


def test_symlink_loop_dangling_link_folder_and_file_on_the_way(tmp_path):
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    assert "a.wav is a symlink loop" in load_error(str(tmp_path / "a.wav"), tmp_path)
    (tmp_path / "gone.wav").symlink_to(tmp_path / "nowhere.wav")
    assert load_error("gone.wav", tmp_path) == (
        f"data.path: {tmp_path / 'gone.wav'} is a symlink to {tmp_path / 'nowhere.wav'}, which "
        "does not exist")
    (tmp_path / "folder").mkdir()
    assert load_error("folder", tmp_path).endswith("folder is a directory, not an audio file")
    (tmp_path / "file").write_bytes(b"x")
    assert load_error("file/x.wav", tmp_path).endswith(
        "file/x.wav: a part of the path is a file, not a folder")


def test_unreadable_file_and_folder_say_permission_denied_not_cannot_decode(tmp_path):
    secret = tmp_path / "secret.wav"
    secret.write_bytes(TONE.read_bytes())
    secret.chmod(0)
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "t.wav").write_bytes(TONE.read_bytes())
    locked.chmod(0)
    try:
        with permissions_enforced():
            file_message = load_error(str(secret), tmp_path)
            folder_message = load_error(str(locked / "t.wav"), tmp_path)
            with pytest.raises(ConvscopeError) as corpus:
                list_corpus(str(locked), tmp_path)
    finally:
        locked.chmod(0o755)
    assert file_message == (f"data.path: {secret}: permission denied: the file cannot be read "
                            "(----------); make it readable (chmod +r) or copy it")
    assert folder_message == (f"data.path: {locked / 't.wav'}: permission denied: the folder "
                              f"{locked} cannot be entered; make it searchable (chmod +x) or "
                              "copy the audio elsewhere")
    assert str(corpus.value) == (f"data.path: cannot list the folder {locked} (Permission "
                                 "denied); make it readable or point data.path below it")


# --- corpus scans --------------------------------------------------------------------------------

def corpus_config(path: Path, **data):
    return to_run_config({"data": {"path": str(path), "start": 0.0, "end": None, **data},
                          "model": {"layers": ONE_LAYER}, "report": False,
                          "plots": {"enabled": False}, "evaluate": {"enabled": False}})


def test_a_corpus_of_a_project_folder_does_not_take_in_its_own_outputs(tmp_path):
    project = tmp_path / "project"
    for name in ("a.wav", "b.wav"):
        (project / "data").mkdir(parents=True, exist_ok=True)
        (project / "data" / name).write_bytes(TONE.read_bytes())
    (project / "data" / ".a.partial.wav").write_bytes(TONE.read_bytes())  # a killed run's temp
    (project / ".venv" / "lib").mkdir(parents=True)
    (project / ".venv" / "lib" / "test.wav").write_bytes(TONE.read_bytes())
    first = run_corpus(corpus_config(project), project / "outputs" / "first", project)
    hydra_run = project / "outputs" / "hydra_run"  # what a CLI run leaves: .hydra/ and audio/
    (hydra_run / RunDir.HYDRA).mkdir(parents=True)
    (hydra_run / RunDir.AUDIO).mkdir()
    (hydra_run / RunDir.AUDIO / "layer1_ch0.wav").write_bytes(TONE.read_bytes())
    second = run_corpus(corpus_config(project), project / "outputs" / "second", project)
    assert [o.file for o in first] == [o.file for o in second] == ["data/a.wav", "data/b.wav"]
    scan = scan_corpus(str(project), project)
    assert scan.run_dirs == ["outputs/first", "outputs/hydra_run", "outputs/second"]
    assert scan.hidden == [".venv"]
    globbed = scan_corpus(str(project / "**" / "*.wav"), project)
    assert [f.relative for f in globbed.files] == ["data/a.wav", "data/b.wav"]


def test_a_corpus_left_empty_by_the_scan_or_the_shard_says_so(tmp_path):
    run_dir = tmp_path / "old_run"
    (run_dir / RunDir.AUDIO).mkdir(parents=True)
    (run_dir / RunDir.SHAPES).write_text("{}")
    (run_dir / RunDir.AUDIO / "input.wav").write_bytes(TONE.read_bytes())
    with pytest.raises(ConvscopeError) as caught:
        run_corpus(corpus_config(tmp_path), tmp_path / "out", tmp_path)
    assert str(caught.value).startswith(f"data.path: {tmp_path} is a directory with no audio")
    assert str(caught.value).endswith("; skipped 1 convscope run dirs (old_run)")
    (tmp_path / "one.wav").write_bytes(TONE.read_bytes())
    with pytest.raises(ConvscopeError, match=r"^data.shard: shard 1 of data.num_shards=2 gets no "
                                             r"files: the corpus .* has 1; use at most 1 shards"):
        run_corpus(corpus_config(tmp_path, shard=1, num_shards=2), tmp_path / "out", tmp_path)


def test_audio_named_like_run_dir_files_never_takes_their_place(tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in ("summary.json", "index.html"):
        (inputs / name).write_bytes(TONE.read_bytes())
    out = tmp_path / "run"
    outcomes = run_corpus(corpus_config(inputs / "*"), out, tmp_path)
    assert [(o.file, o.subdir, o.status) for o in outcomes] == [
        ("index.html", "index.html-2", "ok"), ("summary.json", "summary.json-2", "ok")]
    assert [row["file"] for row in json.loads(RunDir(out).summary_json.read_text())] == [
        "index.html", "summary.json"]
    assert all(RunDir(out / o.subdir).shapes.is_file() for o in outcomes)
    assert not {o.subdir for o in outcomes} & RunDir.TOP_LEVEL


def test_deep_corpus_paths_get_folder_names_the_filesystem_accepts(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    deep = ["/".join([f"{'d' * 120}{i}"] * 3) + f"/{n}.wav" for i in range(2) for n in "ab"]
    names = safe_names(deep)
    assert len(set(names)) == 4 and all(len(name.encode()) < limit for name in names)
    for name in names:
        (tmp_path / name).mkdir()  # the OS's own check of the length


def test_a_symlink_to_an_ancestor_is_followed_once(tmp_path):
    (tmp_path / "c" / "d").mkdir(parents=True)
    (tmp_path / "c" / "d" / "x.wav").write_bytes(TONE.read_bytes())
    (tmp_path / "c" / "d" / "up").symlink_to(tmp_path / "c")
    assert [f.relative for f in list_corpus(str(tmp_path / "c"), tmp_path)] == ["d/x.wav"]


# --- writes the OS refuses -----------------------------------------------------------------------

def test_describe_os_error_names_the_setting_path_errno_and_what_to_do(tmp_path):
    run_dir = tmp_path / "run"
    exc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(run_dir / "audio" / "x.wav"))
    line = describe_os_error(exc, ["data.path=a.wav", f"hydra.run.dir={run_dir}"])
    assert line == (f"hydra.run.dir: {run_dir / 'audio' / 'x.wav'}: No space left on device "
                    "(ENOSPC); the disk is full: free some space or write elsewhere "
                    "(hydra.run.dir=...)")
    assert describe_os_error(FileExistsError(errno.EEXIST, "File exists", "/x"), []) == (
        "/x: File exists (EEXIST); it is already there and is not a folder: remove it or choose "
        "another path")


def test_full_disk_mid_write_names_the_file_and_leaves_no_temp(tmp_path, monkeypatch):
    """A writer that has written half its bytes when the disk fills, as write()/close() report
    it (no file name): every atomic writer names the final file and removes its temp."""
    def half_then_enospc(target, *args, **kwargs):
        Path(target).write_bytes(b"\0" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    from matplotlib.figure import Figure

    from convscope.plots.figure import save_figure

    monkeypatch.setattr(Figure, "savefig", lambda self, target, **kw: half_then_enospc(target))
    with pytest.raises(OSError) as caught:
        save_figure(Figure(), tmp_path / "plots" / "layer1.png", dpi=50)
    assert caught.value.filename == str(tmp_path / "plots" / "layer1.png")
    assert caught.value.errno == errno.ENOSPC
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: half_then_enospc(self))
    with pytest.raises(OSError) as caught:
        write_text(tmp_path / "shapes.json", "{}")
    assert caught.value.filename == str(tmp_path / "shapes.json")
    assert leftovers(tmp_path) == []


def test_libsndfile_system_error_becomes_the_oserror_behind_it(tmp_path):
    """/dev/full: libsndfile's "System error." on a real ENOSPC names the file and the errno."""
    target = tmp_path / "audio" / "layer1_ch0.wav"
    with pytest.raises(OSError) as caught, sndfile_write_errors(target):
        soundfile.write("/dev/full", np.zeros(4000, np.float32), 16000, format="WAV")
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(target))
    assert describe_os_error(caught.value).startswith(
        f'{target}: No space left on device (ENOSPC), which libsndfile reports as "System error."')
    with pytest.raises(OSError) as caught, FloatWav(Path("/dev/full"), 16000, 1) as wav:
        wav.write(np.zeros(100_000, np.float32))
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, "/dev/full")


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])  # libsndfile | convscope's FloatWav
def test_streamed_and_one_shot_wav_writers_stopped_part_way(tmp_path, subtype):
    paths = [tmp_path / "audio" / f"layer1_ch{c}.wav" for c in range(2)]
    block = np.zeros((2, 16000), np.float32)
    with file_size_limit(50_000), pytest.raises(OSError) as caught:
        with WavWriters(paths, 16000, subtype, total_frames=10 * 16000) as writers:
            for _ in range(10):
                writers.write(block)
    assert caught.value.errno == errno.EFBIG and caught.value.filename == str(paths[0])
    with file_size_limit(50_000), pytest.raises(OSError) as caught:
        write_wav(paths[1], np.zeros(100_000, np.float32), 16000, subtype=subtype)
    assert caught.value.errno == errno.EFBIG and caught.value.filename == str(paths[1])
    assert leftovers(tmp_path) == []


def test_unwritable_run_dir_names_the_file_not_the_temp(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_dir.chmod(0o555)
    try:
        with permissions_enforced(), pytest.raises(PermissionError) as caught:
            with atomic_path(run_dir / "shapes.json") as tmp:
                tmp.write_text("{}")
    finally:
        run_dir.chmod(0o755)
    assert caught.value.filename == str(run_dir / "shapes.json")
    assert leftovers(tmp_path) == []


def test_entry_turns_oserror_into_one_line_and_keeps_bugs_visible(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["run.py", "hydra.run.dir=/proc/nope"])
    monkeypatch.setenv("CONVSCOPE_TRACEBACK", "0")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")

    def hydra_main(exc):
        def main():
            raise exc
        return main

    with pytest.raises(SystemExit) as exit_status:
        run_entry(hydra_main(FileNotFoundError(errno.ENOENT, "No such file or directory",
                                               "/proc/nope")))
    assert exit_status.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: hydra.run.dir: /proc/nope: No such file or directory (ENOENT); a folder on the way "
        "does not exist and cannot be created there: check the path"]
    with pytest.raises(TypeError):  # a bug is not translated
        run_entry(hydra_main(TypeError("a bug")))


def test_a_log_file_that_cannot_be_written_is_one_line_after_the_job(monkeypatch, capsys):
    """run.log on a full disk (/dev/full): logging would print a traceback per record; the job
    ends with one line naming the log file instead."""
    monkeypatch.setattr(sys, "argv", ["run.py"])
    monkeypatch.setenv("CONVSCOPE_TRACEBACK", "0")
    handler = logging.FileHandler("/dev/full")
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with pytest.raises(SystemExit) as exit_status:
            reports_errors(lambda: [logging.getLogger("convscope").warning("x" * 10_000)
                                    for _ in range(3)])()
    finally:
        root.removeHandler(handler)
        handler.close()
    assert exit_status.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: /dev/full: No space left on device (ENOSPC); the disk is full: free some space or "
        "write elsewhere (hydra.run.dir=...)"]
    assert "handleError" not in vars(handler)  # the handler is as it was


# --- end to end ----------------------------------------------------------------------------------

def run_py(*overrides: str, preexec=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "run.py"), *overrides],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          preexec_fn=preexec)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_run_dir_that_is_an_existing_file_is_one_line(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    line = one_error_line(run_py(f"hydra.run.dir={taken}"))
    assert line.startswith(f"error: hydra.run.dir: {taken}: File exists (EEXIST);")
    assert taken.read_text() == "mine"


def test_disk_full_during_a_run_is_one_line_and_leaves_no_partial_files(tmp_path):
    """Output files stop part way (a file size limit) and the log cannot be written at all
    (/dev/full): one line for the first output that failed, no logging tracebacks, no temps."""
    def limit_file_size():  # in the child: as `ulimit -f 20`; SIGXFSZ ignored, as a shell does
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))

    run_dir = tmp_path / "run"
    proc = run_py(f"hydra.run.dir={run_dir}", "plots.enabled=false",
                  "hydra.job_logging.handlers.file.filename=/dev/full", preexec=limit_file_size)
    line = one_error_line(proc)
    assert "Logging error" not in proc.stderr
    assert line.startswith(f"error: hydra.run.dir: {run_dir}{os.sep}audio{os.sep}")
    assert "File too large (EFBIG)" in line and "ulimit -f" in line
    assert not [p for p in run_dir.rglob("*") if ".partial" in p.name]
    assert not list(run_dir.rglob("*.wav"))  # nothing that looks finished
