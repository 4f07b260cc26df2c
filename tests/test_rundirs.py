"""Run dirs never collide or mix: new dirs per process, refusal of a used dir (or replace=true),
Hydra's record kept by a rejected config, inputs inside the dir refused, temp names unique per
writer, stale temp files removed, and a sweep that survives a crashing job or a missing launcher.

Three runs started together are real processes (that is the point); the refusals run in-process
through the same console entry (convscope.commands.run_main) to save the start-up time.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from convscope.files import partial_path, partials, write_text
from convscope.rundir import RunDir, claim_new_dir
from tests.helpers import REPO

FAST = ("data.end=2.05", "plots.enabled=false")  # 50 ms of the sample clip, no figures


def _cli(monkeypatch, capsys, *args: str, script: str = "run.py") -> tuple[int, str]:
    """scripts/run.py in this process: (exit status, stderr)."""
    from convscope.commands import run_main

    monkeypatch.setattr(sys, "argv", [script, *args])
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)  # run_entry sets both; restored after
    monkeypatch.delenv("CONVSCOPE_TRACEBACK", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        run_main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        for handler in root.handlers:  # Hydra's job logging: close run.log, keep pytest's own
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.level = handlers, level
    return code, capsys.readouterr().err


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def _page_wavs(run_dir: Path) -> set[str]:
    return set(re.findall(r"audio/[\w.-]+\.wav", RunDir(run_dir).report.read_text()))


def _disk_wavs(run_dir: Path) -> set[str]:
    return {f"audio/{p.name}" for p in RunDir(run_dir).audio_dir.glob("*.wav")}


# --- new dirs -----------------------------------------------------------------------------------

def _claim(base: str, queue) -> None:
    queue.put(claim_new_dir(base))


def test_processes_claiming_one_name_get_distinct_dirs(tmp_path):
    base = str(tmp_path / "outputs" / "12-00-00")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_claim, args=(base, queue)) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    claimed = [queue.get(timeout=5) for _ in workers]
    assert len(set(claimed)) == 6
    assert base in claimed and f"{base}-5" in claimed
    assert claim_new_dir(base) == claim_new_dir(base)  # Hydra resolves it twice: one answer


def test_three_runs_started_together_land_in_three_complete_dirs(tmp_path):
    models = ["seed_example", "sinc_x2", "linear_x2"]  # different channel counts: no stray WAVs
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    procs = [subprocess.Popen([sys.executable, str(REPO / "scripts" / "run.py"), *FAST,
                               f"model={model}"], cwd=tmp_path, env=env, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for model in models]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], errors
    dirs = sorted(p.parent for p in tmp_path.glob("outputs/*/*/shapes.json"))
    assert len(dirs) == 3
    seen = set()
    for run_dir in dirs:
        shapes = json.loads(RunDir(run_dir).shapes.read_text())
        overrides = yaml.safe_load(RunDir(run_dir).hydra_overrides.read_text())
        seen.add(next(o for o in overrides if o.startswith("model=")))
        channels = shapes["output"]["shape"][1]
        assert RunDir(run_dir).report.is_file()
        assert len([w for w in _disk_wavs(run_dir) if "_ch" in w]) == channels
        assert _page_wavs(run_dir) == _disk_wavs(run_dir) == set(shapes["audio"]["files"]) | {
            "audio/reference.wav"}
    assert seen == {f"model={m}" for m in models}


# --- a used dir ---------------------------------------------------------------------------------

@pytest.fixture
def finished(tmp_path, monkeypatch, capsys) -> Path:
    """A finished 3-channel run in tmp_path/run."""
    run_dir = tmp_path / "run"
    code, err = _cli(monkeypatch, capsys, *FAST, f"hydra.run.dir={run_dir}")
    assert code == 0, err
    assert len(_disk_wavs(run_dir)) == 5  # input, reference and 3 channels
    return run_dir


def test_a_used_dir_is_refused_and_a_rejected_config_leaves_it_as_it_was(
        finished, monkeypatch, capsys):
    before = _tree(finished)
    for args in ([], ["model.layers.0.stride=oops"], ["model=no_such_model", "replace=true"],
                 ["data.start=abc", "replace=true"]):
        code, err = _cli(monkeypatch, capsys, *FAST, f"hydra.run.dir={finished}", *args)
        assert code == 2
        assert err.count("\n") == 1 and err.startswith("error: "), err
        assert _tree(finished) == before, args  # .hydra/ and run.log byte for byte
    assert str(finished) in err or "data.start" in err


def test_replace_removes_the_previous_run_first(finished, monkeypatch, capsys):
    assert (finished / "audio" / "layer1_ch2.wav").is_file()  # 3 channels before, 1 after
    code, err = _cli(monkeypatch, capsys, *FAST, "model=sinc_x2", "replace=true",
                     f"hydra.run.dir={finished}")
    assert code == 0, err
    shapes = json.loads(RunDir(finished).shapes.read_text())
    assert shapes["output"]["shape"][1] == 1
    assert _disk_wavs(finished) == _page_wavs(finished) == set(shapes["audio"]["files"]) | {
        "audio/reference.wav"}
    assert not (finished / "audio" / "layer1_ch2.wav").exists()
    assert "model=sinc_x2" in RunDir(finished).hydra_overrides.read_text()
    assert "replace=true: removed the previous run" in RunDir(finished).log.read_text()


def test_replace_puts_the_previous_run_back_when_the_new_one_fails(finished, monkeypatch, capsys):
    """A value only planning can reject (the layer's stride against the input): the old run is
    set aside, the new run fails, and the old run comes back byte for byte, log and record too."""
    before = _tree(finished)
    code, err = _cli(monkeypatch, capsys, *FAST, "model.layers.0.stride=-3", "replace=true",
                     f"hydra.run.dir={finished}")
    assert code == 2 and err.startswith("error: model.layers.0.stride"), err
    assert _tree(finished) == before
    assert not (finished / RunDir.REPLACED).exists()


def test_replace_never_empties_a_dir_convscope_did_not_make(tmp_path, monkeypatch, capsys):
    keep = tmp_path / "music" / "song.txt"
    keep.parent.mkdir()
    keep.write_text("mine")
    code, err = _cli(monkeypatch, capsys, *FAST, "replace=true", f"hydra.run.dir={keep.parent}")
    assert code == 2 and "not a convscope run dir" in err
    assert sorted(p.name for p in keep.parent.iterdir()) == ["song.txt"]


def test_an_input_inside_the_run_dir_is_refused(finished, tmp_path, monkeypatch, capsys):
    clip = finished / "audio" / "input.wav"
    before = _tree(finished)
    code, err = _cli(monkeypatch, capsys, f"data.path={clip}", "data.start=0", "data.end=0.05",
                     "plots.enabled=false", "replace=true", f"hydra.run.dir={finished}")
    assert code == 2 and str(clip) in err and str(finished) in err, err
    assert _tree(finished) == before


def test_stale_partials_of_killed_runs_are_removed_by_the_next_run(tmp_path, monkeypatch, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # a pid that is gone
    killed = tmp_path / "outputs" / "killed"
    (killed / RunDir.HYDRA).mkdir(parents=True)
    mine = partial_path(killed / "audio" / "layer0_ch0.wav")
    stale = mine.with_name(mine.name.replace(f"-{os.getpid()}-", f"-{dead}-"))
    stale.parent.mkdir()
    stale.write_bytes(b"x" * 1000)
    code, err = _cli(monkeypatch, capsys, *FAST, f"hydra.run.dir={tmp_path / 'outputs' / 'next'}")
    assert code == 0, err
    assert not stale.exists() and partials(tmp_path) == []


# --- temp names ---------------------------------------------------------------------------------

def _write_many(path: str, tag: str) -> None:
    for _ in range(50):
        write_text(Path(path), tag * 20000)


def test_concurrent_atomic_writes_to_one_path_do_not_collide(tmp_path):
    target = tmp_path / "summary.csv"
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        try:
            _write_many(str(target), tag)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in "abcd"]
    context = multiprocessing.get_context("fork")
    procs = [context.Process(target=_write_many, args=(str(target), tag)) for tag in "efgh"]
    for worker in [*threads, *procs]:
        worker.start()
    for worker in [*threads, *procs]:
        worker.join(60)
    assert errors == [] and [proc.exitcode for proc in procs] == [0] * 4
    text = target.read_text()
    assert len(text) == 20000 and len(set(text)) == 1  # one writer's whole file, never a mix
    assert partials(tmp_path) == []


# --- sweeps -------------------------------------------------------------------------------------

def test_a_sweep_with_a_crashing_job_keeps_its_summary_and_exits_2(tmp_path, monkeypatch,
                                                                    capsys):
    import convscope.commands as commands

    real = commands.run_job

    def crashes_on_linear(cfg, *args, **kwargs):
        if cfg.model.name == "linear_x2":
            raise RuntimeError("boom in a sweep job")
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(commands, "run_job", crashes_on_linear)
    monkeypatch.setattr("convscope.sweep.failures._failures", [])
    sweep = tmp_path / "sweep"
    code, err = _cli(monkeypatch, capsys, "-m", *FAST, "model=sinc_x2,linear_x2",
                     f"hydra.sweep.dir={sweep}")
    assert code == 2 and err.count("\n") == 1 and "1 of 2 sweep jobs failed" in err, err
    rows = RunDir(sweep).summary_csv.read_text().splitlines()
    assert len(rows) == 3
    failed = [row for row in rows if "linear_x2" in row]
    assert failed and "RuntimeError: boom in a sweep job" in failed[0]
    assert RunDir(sweep).report.is_file() and RunDir(sweep / "0").shapes.is_file()


@pytest.mark.parametrize("missing", ["srun", "cluster"])
def test_a_missing_slurm_is_one_line(missing, tmp_path, monkeypatch, capsys):
    """No SLURM commands on PATH, or SLURM installed with no controller answering (its port
    closed): one `error:` line naming the launcher and what SLURM said, exit 2, no sweep dir.
    tests/test_slurm.py (-m slow) runs the same launcher on a real one-node cluster."""
    import shutil

    if missing == "srun":
        monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    elif not shutil.which("sbatch"):
        pytest.skip("SLURM is not installed here (the srun case covers this machine)")
    conf = tmp_path / "slurm.conf"  # port 9 (discard): nothing listens; 1 s timeouts, no retries
    conf.write_text("ClusterName=none\nSlurmctldHost=localhost\nSlurmctldPort=9\n"
                    "AuthType=auth/none\nCredType=cred/none\nMessageTimeout=1\nTCPTimeout=1\n"
                    "NodeName=localhost CPUs=1\nPartitionName=cpu Nodes=localhost\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    sweep = tmp_path / "sweep"
    code, err = _cli(monkeypatch, capsys, "-m", *FAST, "hydra/launcher=submitit_slurm",
                     f"hydra.sweep.dir={sweep}")
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: hydra/launcher=submitit_slurm: the sweep could not be submitted")
    said = "srun" if missing == "srun" else "Unable to contact slurm controller"
    assert said in err, err
    assert not sweep.exists()


def test_a_sweep_that_failed_earlier_in_this_process_is_not_this_runs(tmp_path, monkeypatch,
                                                                      capsys):
    """A process that ran a failing sweep before (a test session, the Python API) then runs a
    good command: that command exits 0, not 2 with the old sweep's line."""
    from convscope.sweep.failures import failed_jobs_message, record_failed_jobs
    from convscope.sweep.summary import SweepJob

    earlier = SweepJob(tmp_path / "old" / "0", 0, ("data.end=9",), None, None, "data.end: past",
                       None)
    record_failed_jobs(tmp_path / "old", [earlier])
    assert failed_jobs_message()  # noted, as the sweep's callback notes it
    code, err = _cli(monkeypatch, capsys, *FAST, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 0 and err == "", err
