"""The documented SLURM corpus sweep, run as typed on a real one-node SLURM cluster (-m slow;
.ci/run runs it after `make test`).

scripts/slurm_cluster.sh installs Debian's slurm-wlm and munge when they are missing (apt-get:
root or sudo), writes a slurm.conf for this machine (one node with its cores and memory, one
partition `cpu`, no cgroups) and starts munged, slurmctld and slurmd; the fixture stops them
afterwards, whether the tests passed or not. The sweep then runs twice in a folder holding
corpus/: once to the end (every file processed once across the 8 shards, every shard linked from
the sweep's index.html), once with a job cancelled by `scancel` (reported in summary.csv and the
exit status). The fast suite's side of it, a sweep where no SLURM answers, is one `error:` line:
tests/test_rundirs.py::test_a_missing_slurm_is_one_line.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.test_readme import GUIDES, bash_commands

pytestmark = pytest.mark.slow

CLUSTER = REPO / "scripts" / "slurm_cluster.sh"
SLURM_SWEEP = "python scripts/run.py -m hydra/launcher=submitit_slurm"
SHARDS = 8


def documented_sweep() -> str:
    """The SLURM corpus sweep as the docs type it (one node: partition cpu)."""
    found = [command for text in GUIDES.values() for command in bash_commands(text)
             if command.startswith(SLURM_SWEEP)]
    assert len(set(found)) == 1, found
    command = found[0]
    assert "data.path=corpus/" in command and f"'data.shard=range(0,{SHARDS})'" in command
    assert "hydra.launcher.partition=cpu" in command
    return command


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> dict[str, str]:
    """The environment of a shell talking to a one-node cluster started for these tests."""
    state = tmp_path_factory.mktemp("slurm")
    started = time.monotonic()
    installed = subprocess.run([str(CLUSTER), "install"], capture_output=True, text=True,
                               timeout=1200)
    assert installed.returncode == 0, installed.stderr[-3000:]
    print(f"slurm-wlm and munge installed or found in {time.monotonic() - started:.0f} s")
    try:
        up = subprocess.run([str(CLUSTER), "start", str(state)], capture_output=True, text=True,
                            timeout=180)
        assert up.returncode == 0, up.stdout + up.stderr
        print(f"cluster idle {time.monotonic() - started:.0f} s after the test began")
        yield dict(os.environ, SLURM_CONF=str(state / "slurm.conf"),
                   PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    finally:
        subprocess.run([str(CLUSTER), "stop", str(state)], timeout=120)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    """A folder with scripts/ linked and corpus/: 11 clips, two of them in a subfolder."""
    root = tmp_path_factory.mktemp("slurm-sweep")
    (root / "scripts").symlink_to(REPO / "scripts")
    corpus = root / "corpus"
    (corpus / "more").mkdir(parents=True)
    clips = sorted((REPO / "data").glob("*.wav"))
    for copy in range(3):
        for clip in clips:
            folder = corpus / "more" if copy == 2 and clip.stem in ("tone", "constant") else corpus
            shutil.copy(clip, folder / f"{clip.stem}_{copy}.wav")
    (corpus / "sample_2.wav").unlink()  # 11 files: the shards are uneven
    return root


def corpus_files(root: Path) -> list[str]:
    corpus = root / "corpus"
    return sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*.wav"))


def sweep_dirs(root: Path) -> set[Path]:
    return {p for p in (root / "outputs" / "multirun").glob("*/*") if p.is_dir()}


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def the_new_sweep(root: Path, before: set[Path]) -> Path:
    (made,) = sweep_dirs(root) - before
    return made


def test_the_sweep_covers_the_corpus_once_on_a_real_cluster(cluster, corpus_dir):
    command, before = documented_sweep(), sweep_dirs(corpus_dir)
    started = time.monotonic()
    done = subprocess.run(["bash", "-c", command], cwd=corpus_dir, env=cluster,
                          capture_output=True, text=True, timeout=1200)
    print(f"{SHARDS}-job sweep on the one-node cluster: {time.monotonic() - started:.0f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = the_new_sweep(corpus_dir, before)
    jobs = rows(sweep / "summary.csv")
    assert [row["job"] for row in jobs] == [str(n) for n in range(SHARDS)]
    assert all(row["status"] == "ok" for row in jobs), jobs
    processed = [row["file"] for n in range(SHARDS) for row in rows(sweep / str(n) / "summary.csv")]
    assert sorted(processed) == corpus_files(corpus_dir)  # every file, each exactly once
    assert sum(int(row["files"]) for row in jobs) == len(processed)
    # each job ran on the cluster: submitit's SLURM logs, one array task per shard
    assert len(list((sweep / ".submitit").glob("*_*/*_log.out"))) == SHARDS
    links = set(re.findall(r'href="([^"#]+)"', (sweep / "index.html").read_text()))
    assert {f"{n}/index.html" for n in range(SHARDS)} <= links


def test_a_job_killed_with_scancel_is_reported(cluster, corpus_dir):
    command, before = documented_sweep(), sweep_dirs(corpus_dir)
    sweep_proc = subprocess.Popen(["bash", "-c", command], cwd=corpus_dir, env=cluster,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        victim = _cancel_the_last_queued_task(cluster)
        out, err = sweep_proc.communicate(timeout=1200)
    finally:
        if sweep_proc.poll() is None:
            sweep_proc.kill()
            sweep_proc.communicate()
    assert sweep_proc.returncode == 2, err[-3000:]
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"error: 1 of {SHARDS} sweep jobs failed"), err[-3000:]
    assert f"SLURM job {victim} ended without a result" in lines[-1]
    sweep = the_new_sweep(corpus_dir, before)
    jobs = {row["job"]: row for row in rows(sweep / "summary.csv")}
    number = victim.split("_")[1]
    assert jobs.pop(number)["status"] == "error"
    assert len(jobs) == SHARDS - 1 and all(row["status"] == "ok" for row in jobs.values())
    assert f"data.shard={number}" in (sweep / number / ".hydra" / "overrides.yaml").read_text()
    links = set(re.findall(r'href="([^"#]+)"', (sweep / "index.html").read_text()))
    assert all(any(link.split("/")[0] == str(n) for link in links) for n in range(SHARDS))


def _cancel_the_last_queued_task(env: dict[str, str]) -> str:
    """scancel the array's highest task still queued (pending or running); its id (`12_7`)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listed = subprocess.run(["squeue", "-h", "-r", "-t", "PD,R", "-o", "%i"], env=env,
                                capture_output=True, text=True).stdout.split()
        tasks = [task for task in listed if re.fullmatch(r"\d+_\d+", task)]
        if len(tasks) == SHARDS:  # the whole array is queued: none can have finished
            victim = max(tasks, key=lambda task: int(task.split("_")[1]))
            subprocess.run(["scancel", victim], env=env, check=True)
            return victim
        time.sleep(0.2)
    raise AssertionError(f"the sweep's {SHARDS} tasks never showed in squeue")

