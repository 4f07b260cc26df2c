"""Sweeps through Hydra launchers: jobs run in parallel (joblib) or as submitit jobs, and the
SweepSummary callback writes summary.csv and summary.png at the sweep root."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from convscope.sweep_summary import summarize_sweep

from conftest import run_script

pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher")

TINY = ("data.end=2.1", "plots.enabled=false", "report=false")


def read_summary(sweep_dir: Path) -> list[dict]:
    return list(csv.DictReader((sweep_dir / "summary.csv").open()))


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


def test_slurm_launcher_config_composes():
    """No cluster here: check that the SLURM launcher and its settings resolve (--cfg hydra)."""
    proc = run_script("run.py", "hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu",
                      "hydra.launcher.timeout_min=30", "--cfg", "hydra")
    assert proc.returncode == 0, proc.stderr
    assert "submitit_launcher.SlurmLauncher" in proc.stdout
    assert "partition: gpu" in proc.stdout and "timeout_min: 30" in proc.stdout
    assert "convscope.sweep_summary.SweepSummary" in proc.stdout
