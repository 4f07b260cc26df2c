"""replace=true never loses data and a run dir has one writer (rundir/owner.py, commands_rundir).

- A folder convscope did not make (a git project with a stray .hydra/, notes beside another app's
  Hydra record) is refused whole, byte for byte, and not even a lock file is left in it.
- A file that a finished run's record does not list stops the replace, named.
- A kill at every step of a replace (simulated op by op), and real SIGKILLs at spread moments of a
  real run, each followed by a failing replace: the old run (or the new one, had it finished) is
  all that is left, byte for byte.
- A second run into a dir that a run holds is refused with one line; two started together: one
  wins, the dir holds its files alone.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from convscope.rundir import RunDir, owner
from tests.helpers import REPO
from tests.test_rundirs import FAST, _cli, _tree, finished  # noqa: F401 -- finished: a fixture

FAILING = ("model.layers.0.stride=-3", "replace=true")  # only planning rejects it: after set-aside


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO / "src"))


def _run_script(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "scripts" / "run.py"), *args], cwd=cwd,
                            env=_env(), text=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


# --- folders convscope did not make ---------------------------------------------------------------

def _project(root: Path) -> Path:
    """A git project in which some Hydra app once ran: .hydra/ beside .git/, src/ and README."""
    (root / ".git" / "refs").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "src").mkdir()
    (root / "src" / "model.py").write_text("print('mine')\n")
    (root / "README.md").write_text("# my project\n")
    (root / ".hydra").mkdir()
    (root / ".hydra" / "config.yaml").write_text("lr: 0.1\n")
    return root


@pytest.mark.parametrize("replace", [True, False])
def test_a_git_project_with_a_stray_hydra_dir_is_left_whole(tmp_path, monkeypatch, capsys,
                                                            replace):
    project = _project(tmp_path / "project")
    before = _tree(project)
    monkeypatch.chdir(project)
    args = [*FAST, "hydra.run.dir=.", *(["replace=true"] if replace else [])]
    code, err = _cli(monkeypatch, capsys, *args)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: hydra.run.dir: "), err
    assert "(.git, .hydra, README.md, src)" in err and "not a convscope run dir" in err
    assert _tree(project) == before
    assert sorted(p.name for p in project.iterdir()) == [".git", ".hydra", "README.md", "src"]


def test_notes_beside_another_apps_hydra_record_are_kept(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "results"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("other_app: true\n")
    (folder / "notes.txt").write_text("keep me")
    (folder / "results.csv").write_text("a,b\n1,2\n")
    before = _tree(folder)
    code, err = _cli(monkeypatch, capsys, *FAST, "replace=true", f"hydra.run.dir={folder}")
    assert code == 2 and err.count("\n") == 1
    assert "(.hydra, notes.txt, results.csv)" in err, err
    assert _tree(folder) == before and not (folder / RunDir.LOCK).exists()


def test_a_hydra_record_alone_is_not_overwritten(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "other"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("other_app: true\n")
    code, err = _cli(monkeypatch, capsys, *FAST, f"hydra.run.dir={folder}")
    assert code == 2 and "(.hydra)" in err, err
    assert (folder / ".hydra" / "config.yaml").read_text() == "other_app: true\n"


def test_a_file_the_record_does_not_list_stops_the_replace(finished, monkeypatch, capsys):
    record = json.loads((finished / RunDir.RECORD).read_text())
    assert record["state"] == "finished" and "shapes.json" in record["files"]
    assert "audio/layer1_ch2.wav" in record["files"]
    (finished / "audio" / "my_edit.wav").write_bytes(b"RIFF mine")
    before = _tree(finished)
    code, err = _cli(monkeypatch, capsys, *FAST, "model=sinc_x2", "replace=true",
                     f"hydra.run.dir={finished}")
    assert code == 2 and err.count("\n") == 1, err
    assert "audio/my_edit.wav" in err and "does not list" in err
    assert _tree(finished) == before


# --- a kill at every step of a replace -----------------------------------------------------------

class Killed(BaseException):
    """Stands for SIGKILL: raised before the n-th file operation, with no cleanup after it."""


def _write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


OLD = {"shapes.json": "old", "audio/layer0_ch0.wav": "old wav", ".hydra/config.yaml": "seed: 1"}
NEW = {"shapes.json": "new", "plots/layer0_conv.png": "new png", ".hydra/config.yaml": "seed: 2"}


def _replace(folder: Path, files: dict[str, str], finish: bool) -> None:
    """What JobDir.open, the job and JobDir._settle do to the dir, in their order."""
    owner.recover_aside(folder)
    owner.set_aside(folder)
    owner.claim(folder)
    _write(folder, files)
    if finish:
        owner.seal(folder, "finished")
        owner.drop_aside(folder)
    else:  # the job failed: what it wrote goes, the old run comes back
        owner.recover_aside(folder)


def _file_ops_killed_at(monkeypatch, n: int) -> None:
    calls = iter(range(10**6))

    def counted(real):
        def op(*args, **kwargs):
            if next(calls) == n:
                raise Killed
            return real(*args, **kwargs)
        return op

    for owner_, name in [(pathlib.Path, "rename"), (pathlib.Path, "mkdir"),
                         (pathlib.Path, "rmdir"), (pathlib.Path, "unlink"),
                         (pathlib.Path, "write_text"), (os, "replace"), (shutil, "rmtree")]:
        monkeypatch.setattr(owner_, name, counted(getattr(owner_, name)))


def test_a_kill_at_any_step_of_a_replace_then_a_failing_replace_loses_nothing(tmp_path):
    outcomes = set()
    for n in range(200):
        folder = tmp_path / f"kill{n}"
        folder.mkdir()
        owner.claim(folder)
        _write(folder, OLD)
        owner.seal(folder, "finished")
        old = _tree(folder)
        with pytest.MonkeyPatch.context() as monkeypatch:
            _file_ops_killed_at(monkeypatch, n)
            try:
                _replace(folder, NEW, finish=True)
                completed = True
            except Killed:
                completed = False
        assert owner.foreign_files(folder) == [], n  # the next replace=true is not refused
        sealed_new = (owner.read_record(folder) or {}).get("files") == sorted(NEW)
        _replace(folder, {"shapes.json": "partial"}, finish=False)
        after = _tree(folder)
        assert not (folder / RunDir.REPLACED).exists() and not (folder / RunDir.DROPPED).exists()
        if sealed_new:  # the killed run had finished: it stays, the one before it went
            assert {k: v for k, v in after.items() if k != RunDir.RECORD} == {
                k: v.encode() for k, v in NEW.items()}, n
            outcomes.add("new")
        else:
            assert after == old, n
            outcomes.add("old")
        if completed:
            break
    assert completed and n > 10 and outcomes == {"old", "new"}


def test_a_leftover_of_a_killed_replace_is_put_back_and_said_so(finished, monkeypatch, capsys):
    before = _tree(finished)
    owner.set_aside(finished)  # the killed run got this far, and wrote a little
    owner.claim(finished)
    (finished / "shapes.json").write_text("{}")
    code, err = _cli(monkeypatch, capsys, *FAST, *FAILING, f"hydra.run.dir={finished}")
    assert code == 2 and err.startswith("error: model.layers.0.stride"), err
    assert _tree(finished) == before
    code, err = _cli(monkeypatch, capsys, *FAST, "model=sinc_x2", "replace=true",
                     f"hydra.run.dir={finished}")
    assert code == 0, err
    assert not (finished / RunDir.REPLACED).exists()
    log = RunDir(finished).log.read_text()
    assert "removed the previous run" in log


@pytest.mark.parametrize("fraction", [0.15, 0.35, 0.55, 0.75, 0.95])
def test_sigkill_during_a_real_replace_then_a_failing_replace_loses_nothing(
        finished, monkeypatch, capsys, fraction):
    """SIGKILL at a random moment within a replacing run's own duration (measured first on a
    copy), then a replace that fails after its set-aside: the old run is back byte for byte, or
    the killed run had finished and is whole."""
    before = _tree(finished)
    timing = finished.with_name("timing")
    shutil.copytree(finished, timing)
    start = time.monotonic()
    proc = _run_script(*FAST, "model=sinc_x2", "replace=true", f"hydra.run.dir={timing}",
                       cwd=finished.parent)
    assert proc.wait(300) == 0, proc.stderr.read()
    duration = time.monotonic() - start
    delay = duration * random.Random(int(fraction * 100)).uniform(fraction - 0.1, fraction + 0.05)
    proc = _run_script(*FAST, "model=sinc_x2", "replace=true", f"hydra.run.dir={finished}",
                       cwd=finished.parent)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    code, err = _cli(monkeypatch, capsys, *FAST, *FAILING, f"hydra.run.dir={finished}")
    assert code == 2 and err.count("\n") == 1, err
    assert not (finished / RunDir.REPLACED).exists()
    record = owner.read_record(finished)
    if record["state"] == "finished" and record["files"] != json.loads(
            before[RunDir.RECORD])["files"]:  # the killed run had finished
        assert json.loads(RunDir(finished).shapes.read_text())["output"]["shape"][1] == 1
        assert set(record["files"]) <= set(_tree(finished))
    else:
        assert _tree(finished) == before, delay


# --- one writer ------------------------------------------------------------------------------------

def test_a_dir_another_run_holds_is_refused(finished, monkeypatch, capsys):
    before = _tree(finished)
    held = owner.try_lock(finished)  # another run, mid-way
    try:
        code, err = _cli(monkeypatch, capsys, *FAST, "replace=true", f"hydra.run.dir={finished}")
    finally:
        held.release()
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"error: hydra.run.dir: another convscope run is writing into {finished}")
    assert _tree(finished) == before
    code, err = _cli(monkeypatch, capsys, *FAST, "replace=true", f"hydra.run.dir={finished}")
    assert code == 0, err  # released: the dir is free again


def test_two_runs_started_together_into_one_dir_leave_one_runs_files(tmp_path):
    run_dir = tmp_path / "shared"
    procs = {seed: _run_script(*FAST, f"seed={seed}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
             for seed in (1, 2)}
    errors = {seed: proc.communicate(timeout=300)[1] for seed, proc in procs.items()}
    codes = {seed: proc.returncode for seed, proc in procs.items()}
    assert sorted(codes.values()) == [0, 2], errors
    winner = next(seed for seed, code in codes.items() if code == 0)
    loser_error = errors[3 - winner]
    assert loser_error.count("\n") == 1 and loser_error.startswith("error: hydra.run.dir: ")
    assert str(run_dir) in loser_error
    assert yaml.safe_load(RunDir(run_dir).hydra_config.read_text())["seed"] == winner
    record = owner.read_record(run_dir)
    assert record["pid"] == procs[winner].pid and record["state"] == "finished"
    assert set(record["files"]) <= set(_tree(run_dir))
    assert RunDir(run_dir).log.read_text().count("replace") == 0


def test_the_python_api_claims_its_dir_as_the_cli_does(tmp_path):
    import convscope
    from convscope.errors import ConvscopeError

    out = tmp_path / "api"
    report = convscope.run([*FAST], out_dir=out)
    record = owner.read_record(report.out_dir)
    assert record["state"] == "finished" and "shapes.json" in record["files"]
    with pytest.raises(ConvscopeError, match=r"^out_dir: .* already holds files \(audio"):
        convscope.run([*FAST], out_dir=out)
    other = tmp_path / "other"
    (other / ".hydra").mkdir(parents=True)
    (other / ".hydra" / "config.yaml").write_text("other_app: true\n")
    with pytest.raises(ConvscopeError, match=r"already holds files \(\.hydra\)"):
        convscope.run([*FAST], out_dir=other)
    assert (other / ".hydra" / "config.yaml").read_text() == "other_app: true\n"
    held = owner.try_lock(tmp_path / "busy")
    try:
        with pytest.raises(ConvscopeError, match="another convscope run is writing into"):
            convscope.run([*FAST], out_dir=tmp_path / "busy")
    finally:
        held.release()


@pytest.mark.parametrize("args", [["model.layers.0.stride=oops"], ["data.start=abc"],
                                  ["model.layers.0.stride=-3"]])
def test_a_run_refused_before_it_begins_leaves_no_run_dir(tmp_path, monkeypatch, capsys, args):
    monkeypatch.chdir(tmp_path)
    code, err = _cli(monkeypatch, capsys, *FAST, *args)  # the default dir, outputs/DATE/TIME
    assert code == 2 and err.startswith("error: "), err
    assert [p for p in (tmp_path / "outputs").rglob("*") if p.is_file()] == []
    named = tmp_path / "named"
    code, err = _cli(monkeypatch, capsys, *FAST, *args, f"hydra.run.dir={named}")
    assert code == 2 and not named.exists(), err


def test_a_removed_run_dir_takes_its_log_handler_with_it(tmp_path, monkeypatch, capsys):
    """In one process (tests, a launcher's jobs) the next job must not log into a folder that
    a refused run removed."""
    import logging

    from convscope.commands import run_main

    named = tmp_path / "named"
    monkeypatch.setattr(sys, "argv", ["run.py", *FAST, "model.layers.0.stride=-3",
                                      f"hydra.run.dir={named}"])
    monkeypatch.setenv("CONVSCOPE_TRACEBACK", "0")
    with pytest.raises(SystemExit):
        run_main()
    try:
        assert not named.exists()
        assert not [h for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)
                    and str(named) in h.baseFilename]
        logging.getLogger("convscope").warning("a later job's line")  # no FileNotFoundError
    finally:
        for handler in logging.getLogger().handlers[:]:
            if isinstance(handler, logging.FileHandler):
                handler.close()
                logging.getLogger().removeHandler(handler)
