"""The user's code is contained (issue 24 item 5): whatever model=module's code does, convscope ends
with one `error:` line naming what it did, or finishes normally.

- any exception from import, construction or forward, BaseException subclasses, GeneratorExit and
  sys.exit() included, is one line naming the class (a sweep records it and goes on);
- NaN weights are refused naming the parameter, a NaN output naming model.target;
- a module that closes sys.stdout does not take convscope's log lines or its error line with it;
- a thread a module leaves running does not keep the command alive.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

import convscope
from convscope.errors import ConvscopeError
from convscope.rundir import RunDir
from tests.helpers import run_script

HOSTILE = '''
import sys, threading, time
import torch


CLOSED = []


class Shout(BaseException):
    """Not an Exception: `except Exception` lets it through."""


class Hostile(torch.nn.Module):
    def __init__(self, mode="ok"):
        super().__init__()
        if mode == "init_generator_exit":
            raise GeneratorExit("closed in __init__")
        self.mode = mode
        self.conv = torch.nn.ConvTranspose1d(1, 1, 4, stride=2, padding=1)
        if mode == "nan_weight":
            with torch.no_grad():
                self.conv.weight[0, 0, 1] = float("nan")

    def forward(self, x):
        if self.mode == "base_exception":
            raise Shout("from forward")
        if self.mode == "exit0":
            sys.exit(0)
        if self.mode == "close_stdout" and not sys.stdout.closed and not CLOSED:
            print("the module speaks", flush=True)
            sys.stdout.close()  # once, as a library's clean-up would
            CLOSED.append(True)
        if self.mode == "poison_modules":
            sys.modules["numpy"] = None  # every later `import numpy` would fail
            sys.modules.pop("json", None)
        if self.mode == "slow":
            time.sleep(1.3)
        if self.mode == "thread":
            threading.Thread(target=time.sleep, args=(3600,), name="stray").start()
        y = self.conv(x)
        return y * float("inf") if self.mode == "inf_output" else y
'''
SEGMENT = ("data.end=2.05", "plots.enabled=false", "evaluate.enabled=false")


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    (tmp_path / "hostile.py").write_text(HOSTILE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(mode: str, *extra: str) -> str:
    with pytest.raises(ConvscopeError) as caught:
        convscope.run(["model=module", "model.target=hostile.py:Hostile",
                       f"model.kwargs={{mode: {mode}}}", *SEGMENT, *extra],
                      out_dir=f"out_{mode}")
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("mode, expected", [
    ("base_exception", "model.target: hostile.py:Hostile raised Shout: from forward in "),
    ("exit0", "model.target: hostile.py:Hostile raised SystemExit (sys.exit(0) in the user's "
              "code) in "),
    ("init_generator_exit", "model.target: hostile.py:Hostile(mode='init_generator_exit') raised "
                            "GeneratorExit: closed in __init__"),
    ("nan_weight", "model.target: hostile.py:Hostile's conv.weight holds 1 non-finite value(s)"),
    ("inf_output", "model.target: hostile.py:Hostile gave a non-finite output (-inf at channel 0"),
])
def test_what_a_module_does_is_one_error_line(user_dir, mode, expected):
    assert _run(mode).startswith(expected)


@pytest.mark.parametrize("mode, expected", [
    ("base_exception", "model.target: hostile.py:Hostile raised Shout: from forward in "),
    ("exit0", "model.target: hostile.py:Hostile raised SystemExit (sys.exit(0) in the user's "),
])
def test_a_streamed_module_is_contained_as_a_one_shot_one(user_dir, mode, expected):
    """The estimate and the streamed blocks run the user's forward too, before any one shot."""
    assert _run(mode, "stream.enabled=true").startswith(expected)


def test_sys_exit_at_import_is_one_line(user_dir):
    (user_dir / "exits.py").write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(ConvscopeError, match=r"^model.target: importing .*exits.py raised "
                                             r"SystemExit \(sys.exit\(3\)"):
        convscope.run(["model=module", "model.target=exits.py:Gen", *SEGMENT], out_dir="out")


def test_the_command_line_keeps_its_log_when_a_module_closes_stdout(user_dir):
    done = run_script("run.py", "model=module", "model.target=hostile.py:Hostile",
                      "model.kwargs={mode: close_stdout}", *SEGMENT, "hydra.run.dir=out",
                      cwd=user_dir)
    assert done.returncode == 0, done.stderr
    assert "Logging error" not in done.stderr and "Traceback" not in done.stderr
    assert "the module speaks" in done.stdout
    assert "outputs written to" in done.stdout.split("the module speaks")[-1]  # logged after it
    assert json.loads(RunDir(user_dir / "out").shapes.read_text())["output"]["shape"][1] == 1


def test_a_thread_a_module_leaves_does_not_keep_the_command_alive(user_dir):
    started = time.monotonic()
    done = run_script("run.py", "model=module", "model.target=hostile.py:Hostile",
                      "model.kwargs={mode: thread}", *SEGMENT, "hydra.run.dir=out", cwd=user_dir)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 120
    said = done.stdout + done.stderr
    assert "thread(s) still running 2 s after the run ended (stray" in said
    assert RunDir(user_dir / "out").shapes.is_file()


def test_a_sweep_records_a_module_that_exits_and_runs_the_other_jobs(user_dir):
    done = run_script("run.py", "-m", "model=module", "model.target=hostile.py:Hostile",
                      "model.kwargs.mode=exit0,ok", *SEGMENT, "hydra.sweep.dir=sweep",
                      cwd=user_dir)
    assert done.returncode == 2 and "1 of 2 sweep jobs failed" in done.stderr, done.stderr
    rows = (user_dir / "sweep" / "summary.csv").read_text()
    assert "SystemExit (sys.exit(0)" in rows
    assert RunDir(user_dir / "sweep" / "1").shapes.is_file()


def test_a_long_forward_says_it_is_still_running(user_dir, monkeypatch, caplog):
    from convscope.stack import forward_progress

    monkeypatch.setattr(forward_progress, "PROGRESS_S", 0.4)
    with caplog.at_level("INFO", logger="convscope"):
        convscope.run(["model=module", "model.target=hostile.py:Hostile",
                       "model.kwargs={mode: slow}", *SEGMENT], out_dir="out")
    said = [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]
    assert len(said) >= 2, said
    assert said[0].startswith("model.target: hostile.py:Hostile's forward on [1, 1, 800]: "
                              "still running, 0 s so far")


def test_a_module_that_poisons_sys_modules_does_not_break_the_run(user_dir):
    import numpy

    report = convscope.run(["model=module", "model.target=hostile.py:Hostile",
                            "model.kwargs={mode: poison_modules}", *SEGMENT], out_dir="out")
    assert sys.modules["numpy"] is numpy and "json" in sys.modules
    assert report.shapes["output"]["shape"][1] == 1  # written after the forward, numpy and all
