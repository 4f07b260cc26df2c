"""SIGTERM (timeout, SLURM, docker) and Ctrl-C during a streamed run: one `error:` line, exit
143 / 130, and no hidden `.partial` temp file left in the run dir; a run killed outright (SIGKILL,
whose temp files nothing can remove) has them removed by the next run beside it.

`make test` runs the SIGTERM case on a 10-minute input; `pytest -m slow tests/test_signals.py`
adds Ctrl-C and the README's streamed hour.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convscope.files import partials
from tests.helpers import REPO


def _long_wav(tmp_path: Path, seconds: int) -> Path:
    path = tmp_path / f"long_{seconds}s.wav"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_long_audio.py"),
                    "--seconds", str(seconds), "--out", str(path)], check=True,
                   capture_output=True)
    return path


def _start(wav: Path, run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "run.py"), f"data.path={wav}", "data.start=0",
         "data.end=null", "stream.enabled=true", "plots.enabled=false", "evaluate.enabled=false",
         # small blocks: 10 minutes stream for seconds, long enough to be interrupted mid-write
         "stream.block_seconds=0.05", f"hydra.run.dir={run_dir}"],
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")), text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_partials(proc: subprocess.Popen, run_dir: Path, timeout: float = 120) -> None:
    """Until the streamed WAVs are being written (their temp files exist), then a little more."""
    deadline = time.monotonic() + timeout
    while not (run_dir.is_dir() and partials(run_dir)):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the streamed run never started writing"
        time.sleep(0.1)
    time.sleep(1.0)


def _interrupt(tmp_path: Path, wav: Path, signum: int) -> tuple[int, str, Path]:
    run_dir = tmp_path / "run"
    proc = _start(wav, run_dir)
    _wait_for_partials(proc, run_dir)
    proc.send_signal(signum)
    err = proc.communicate(timeout=60)[1]
    return proc.returncode, err, run_dir


def _assert_one_line_and_clean(code: int, err: str, run_dir: Path, signum: int) -> None:
    name = signal.Signals(signum).name
    assert code == 128 + signum, err
    assert err.count("\n") == 1 and err.startswith(f"error: interrupted ({name})"), err
    assert "partial files removed" in err
    assert partials(run_dir) == []
    assert not (run_dir / "shapes.json").exists()  # nothing that looks finished


def test_sigterm_during_a_streamed_run_is_one_line_and_leaves_no_temp_files(tmp_path):
    code, err, run_dir = _interrupt(tmp_path, _long_wav(tmp_path, 600), signal.SIGTERM)
    _assert_one_line_and_clean(code, err, run_dir, signal.SIGTERM)


@pytest.mark.slow
def test_ctrl_c_during_a_streamed_run_is_one_line_and_leaves_no_temp_files(tmp_path):
    code, err, run_dir = _interrupt(tmp_path, _long_wav(tmp_path, 600), signal.SIGINT)
    _assert_one_line_and_clean(code, err, run_dir, signal.SIGINT)


@pytest.mark.slow
def test_a_streamed_hour_killed_outright_is_cleaned_by_the_next_run(tmp_path):
    hour = _long_wav(tmp_path, 3600)
    code, err, run_dir = _interrupt(tmp_path, hour, signal.SIGTERM)
    _assert_one_line_and_clean(code, err, run_dir, signal.SIGTERM)

    killed = tmp_path / "killed"
    proc = _start(hour, killed)
    _wait_for_partials(proc, killed)
    proc.kill()  # SIGKILL: no handler, no finally; its temp files stay behind
    proc.communicate(timeout=60)
    left = partials(killed)
    assert left and sum(p.stat().st_size for p in left) > 0

    following = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "run.py"), "data.end=2.05",
         "plots.enabled=false", f"hydra.run.dir={tmp_path / 'next'}"],
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")), capture_output=True, text=True,
        timeout=300)
    assert following.returncode == 0, following.stderr
    assert partials(tmp_path) == []
    assert "removed" in (tmp_path / "next" / "run.log").read_text()


STUCK_IN_C = '''
import hashlib
import pathlib
import torch


class StuckInC(torch.nn.Module):
    """A forward that spends a minute in one C call that never checks for signals (it lets
    other threads run, as torch's kernels do), like a oneDNN kernel on a bad shape."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(1, 1, 3, padding=1)

    def forward(self, x):
        pathlib.Path("forward_started").write_text("now")
        hashlib.pbkdf2_hmac("sha256", b"convscope", b"salt", 60_000_000)
        return self.conv(x)
'''


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_a_run_stuck_in_c_code_within_seconds(tmp_path, signum):
    (tmp_path / "stuck.py").write_text(STUCK_IN_C)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "run.py"), "model=module",
         "model.target=stuck.py:StuckInC", "data.end=2.05", "plots.enabled=false",
         f"hydra.run.dir={run_dir}"], cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")), text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp_path / "forward_started").exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the module's forward never started"
        time.sleep(0.05)
    time.sleep(1.0)  # inside pbkdf2_hmac now
    sent = time.monotonic()
    proc.send_signal(signum)
    err = proc.communicate(timeout=60)[1]
    waited = time.monotonic() - sent
    _assert_one_line_and_clean(proc.returncode, err, run_dir, signum)
    assert "did not return within 3 s" in err
    assert waited < 10, waited  # pbkdf2_hmac alone takes a minute


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT])
def test_a_killed_run_leaves_no_figure_worker_behind(tmp_path, signum):
    wav = _long_wav(tmp_path, 60)
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "run.py"), f"data.path={wav}", "data.start=0",
         "data.end=null", "stream.enabled=true", "stream.block_seconds=0.05",
         f"hydra.run.dir={tmp_path / 'run'}"],
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")), text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (workers := _children(proc.pid)):  # the figure worker starts before torch loads
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.05)
    _wait_for_partials(proc, tmp_path / "run")
    proc.send_signal(signum)
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), workers
