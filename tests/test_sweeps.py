"""Sweeps through Hydra launchers: jobs run in parallel (joblib) or as submitit jobs, and the
SweepReport callback writes summary.csv, summary.png and index.html at the sweep root, all from one
scan of the sweep dir."""

from __future__ import annotations

import csv
import json
import logging
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile

from convscope.sweep.callbacks import write_sweep_report
from convscope.sweep.summary import scan_sweep, summarize_sweep
from tests.helpers import run_script

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")

TINY = ("data.end=2.1", "plots.enabled=false", "report=false")


def read_summary(sweep_dir: Path) -> list[dict]:
    return list(csv.DictReader((sweep_dir / "summary.csv").open()))


class SweepTable(HTMLParser):
    """The rows of the index's table.sweep as cell texts, and each row's first link."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.links: list[str] = []
        self._in_table = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and "sweep" in (attrs.get("class") or ""):
            self._in_table = True
        elif self._in_table and tag == "tr":
            self.rows.append([])
        elif self._in_table and tag == "td":
            self._cell = []
        elif self._in_table and tag == "a" and self.rows and not self.rows[-1] \
                and self._cell is not None:
            self.links.append(attrs.get("href"))

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_table = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def index_table(sweep_dir: Path) -> SweepTable:
    parser = SweepTable()
    parser.feed((sweep_dir / "index.html").read_text(encoding="utf-8"))
    parser.rows = [row for row in parser.rows if row]  # the header row has th cells only
    return parser


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_stride_sweep_runs_every_job_and_summarises_them(tmp_path, launcher):
    sweep = tmp_path / "sweep"
    proc = run_script("run.py", "-m", f"hydra/launcher={launcher}", "model.layers.1.stride=2,3,4",
                      *TINY, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_summary(sweep)
    assert [row["overrides"].split()[0] for row in rows] == [
        f"model.layers.1.stride={s}" for s in (2, 3, 4)]
    # 0.1 s = 1600 samples; L_out = (1600-1)*s - 4 + 4 + 1 + 1
    assert [row["output_shape"] for row in rows] == ["1x3x3200", "1x3x4799", "1x3x6398"]
    assert all(row["status"] == "ok" and row["snr_db"] for row in rows)
    assert (sweep / "summary.png").stat().st_size > 0


def test_a_bad_sweep_point_is_reported_and_the_others_finish(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_script("run.py", "-m", "hydra/launcher=joblib", "model.layers.1.stride=1,2",
                      *TINY, f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "1 of 2 sweep jobs failed" in errors[0]
    assert "model.layers.1.output_padding" in errors[0] and "Traceback" not in proc.stderr
    rows = read_summary(sweep)
    assert [row["status"] for row in rows] == ["error", "ok"]
    assert "output_padding=1 must be smaller than stride=1" in rows[0]["error"]
    # the index, from the same scan: the failed job's error on its row, the other ok
    table = index_table(sweep)
    assert [row[0] for row in table.rows] == ["0", "1"]
    assert table.rows[0][2].startswith("error:")
    assert "output_padding=1 must be smaller than stride=1" in table.rows[0][2]
    assert table.rows[1][2] == "ok"


def write_tone(path: Path, seconds: float, sr: int = 8000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    soundfile.write(str(path), 0.3 * np.sin(2 * np.pi * 440 * t), sr)


def test_corpus_sweep_index_lists_the_jobs_not_the_files(tmp_path):
    """Shards of a corpus: each job runs files into subfolders (each with shapes.json); the index
    and the summary both list the two jobs, ok, and not the files as jobs."""
    corpus = tmp_path / "corpus"
    for name in ("a.wav", "b.wav", "sub/c.wav"):
        write_tone(corpus / name, 0.2)
    sweep = tmp_path / "sweep"
    proc = run_script("run.py", "-m", "data.shard=0,1", "data.num_shards=2", f"data.path={corpus}",
                      "data.start=0", "data.end=null", "data.sr=8000", "plots.enabled=false",
                      "evaluate.enabled=false", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (sweep / "0" / "a.wav" / "shapes.json").exists()  # the files' own results
    assert [(row["job"], row["status"], row["files"]) for row in read_summary(sweep)] == [
        ("0", "ok", "2"), ("1", "ok", "1")]
    table = index_table(sweep)
    assert [row[0] for row in table.rows] == ["0", "1"]
    assert [row[2] for row in table.rows] == ["ok", "ok"]
    assert "data.shard=1" in table.rows[1][1]
    assert table.links == ["0/index.html", "1/index.html"]  # each job's corpus index
    page = (sweep / "index.html").read_text(encoding="utf-8")
    assert "2 jobs, 2 ok" in page and "failed" not in page


def test_summary_of_a_sweep_dir_on_disk(tmp_path):
    """The callback's work, without Hydra: finished, failed, corpus and unfinished jobs."""
    def job(name, overrides, **files):
        (tmp_path / name / ".hydra").mkdir(parents=True)
        (tmp_path / name / ".hydra" / "overrides.yaml").write_text(
            "".join(f"- {o}\n" for o in overrides))
        for file, content in files.items():
            (tmp_path / name / f"{file}.json").write_text(json.dumps(content))

    shapes = {"input": {"shape": [1, 1, 10]}, "output": {"shape": [1, 2, 20], "sample_rate": 32}}
    job("0", ["seed=1"], shapes=shapes, metrics={"snr_db": 3.5, "channel": 0})
    job("1", ["seed=2"], error={"error": "data.end: past the end"})
    job("2", ["data.path=corpus"], summary=[{"status": "ok"}, {"status": "error"}])
    job("10", ["seed=3"])
    rows = summarize_sweep(tmp_path)
    assert [(r["job"], r["status"]) for r in rows] == [
        ("0", "ok"), ("1", "error"), ("2", "1 files failed"), ("10", "unfinished")]
    saved = read_summary(tmp_path)
    assert saved[0]["output_shape"] == "1x2x20" and saved[0]["snr_db"] == "3.5"
    assert list(saved[0])[-1] == "error" and saved[1]["error"] == "data.end: past the end"
    assert (tmp_path / "summary.png").exists()
    jobs = scan_sweep(tmp_path)
    assert [(job.name, job.number, job.status, job.error) for job in jobs] == [
        ("0", 0, "ok", None), ("1", 1, "error", "data.end: past the end"),
        ("2", 2, "1 files failed", None), ("10", 10, "unfinished", None)]


def test_one_failed_step_does_not_stop_the_others(tmp_path, caplog):
    """The callback scans once; a summary.csv it can't write is a warning, and the plot and the
    index are still written, the index showing the error.json job's error."""
    for name, overrides, files in [("0", ["seed=1"], {"error": {"error": "data.end: past the end"}}),
                                   ("1", ["seed=2"], {})]:
        (tmp_path / name / ".hydra").mkdir(parents=True)
        (tmp_path / name / ".hydra" / "overrides.yaml").write_text(
            "".join(f"- {o}\n" for o in overrides))
        for file, content in files.items():
            (tmp_path / name / f"{file}.json").write_text(json.dumps(content))
    (tmp_path / "summary.csv").mkdir()  # writing the CSV fails
    with caplog.at_level(logging.WARNING, logger="convscope"):
        write_sweep_report(tmp_path)
    assert any("could not write summary.csv" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "summary.png").is_file()
    table = index_table(tmp_path)
    assert table.rows[0][2] == "error: data.end: past the end"
    assert table.rows[1][2].startswith("unfinished")


def test_slurm_launcher_config_composes():
    """The SLURM launcher and its settings resolve (--cfg hydra), to convscope's launcher (it
    waits for every job and records one SLURM killed; tests/test_slurm.py runs it on a real
    cluster) with every key of the submitit plugin's."""
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf

    proc = run_script("run.py", "hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
                      "hydra.launcher.timeout_min=30", "--cfg", "hydra")
    assert proc.returncode == 0, proc.stderr
    assert "_target_: hydra_plugins.convscope_slurm_launcher.slurm_launcher.SlurmLauncher" \
        in proc.stdout
    launcher = proc.stdout.split("\n  launcher:", 1)[1].split("\n  sweeper:", 1)[0]
    for key in SlurmQueueConf.__dataclass_fields__:
        assert f"\n    {key}:" in launcher, key
    assert "partition: gpu" in proc.stdout and "timeout_min: 30" in proc.stdout
    # one end-of-sweep callback (it used to be two, SweepSummary and SweepIndex)
    assert "convscope.sweep.callbacks.SweepReport" in proc.stdout
    assert "SweepSummary" not in proc.stdout and "SweepIndex" not in proc.stdout
