"""The installed (non-editable) package: console commands that work from any directory.

A wheel is built from a copy of the checkout and installed into a fresh virtual environment
whose only convscope is that wheel; the other packages come from this environment (a .pth
file), so the test needs no network and no second download of torch. The commands then run in a
temporary directory, far from the checkout's configs/ and data/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import REPO

SOURCES = ("pyproject.toml", "setup.py", "README.md", "src", "configs", "data", "docs")


def _run(args: list, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only the installed copy
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv with the convscope wheel installed."""
    root = tmp_path_factory.mktemp("install")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name,
             **({"ignore": shutil.ignore_patterns("*.egg-info", "__pycache__")}
                if (REPO / name).is_dir() else {}))
    wheels = root / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                  "--no-index", str(source), "-w", str(wheels)], cwd=root)
    assert built.returncode == 0, built.stderr
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    assert made.returncode == 0, made.stderr
    site = Path(_run([venv / "bin" / "python", "-c",
                      "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=root).stdout.strip())
    (site / "_convscope_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("convscope-*.whl"))
    done = _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q",
                 "--no-deps", "--no-index", wheel], cwd=root)
    assert done.returncode == 0, done.stderr
    return venv / "bin"


def test_the_wheel_is_what_gets_imported(installed, tmp_path):
    where = _run([installed / "python", "-c", "import convscope; print(convscope.__file__)"],
                 cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert "site-packages" in where.stdout and str(REPO) not in where.stdout


def test_convscope_run_writes_the_reference_example_anywhere(installed, tmp_path):
    proc = _run([installed / "convscope-run"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dirs = [p.parent for p in (tmp_path / "outputs").glob("*/*/shapes.json")]
    assert len(run_dirs) == 1
    shapes = json.loads((run_dirs[0] / "shapes.json").read_text())
    assert shapes["output"]["shape"] == [1, 3, 32000]
    assert shapes["input"]["shape"] == [1, 1, 16000]
    # the bundled clip, from the installed package, not from a checkout
    assert "site-packages" in shapes["input"]["path"] and str(REPO) not in shapes["input"]["path"]
    for name in ("index.html", "run.log", "weights.pt", "audio/layer1_ch2.wav",
                 "plots/layer1_ConvTranspose1d.png"):
        assert (run_dirs[0] / name).is_file(), name


def test_convscope_explain_and_bad_input(installed, tmp_path):
    proc = _run([installed / "convscope-explain", "example=tconv1d_basic", "explorer=true",
                 f"hydra.run.dir={tmp_path / 'explain'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tconv1d_basic" in proc.stdout
    # the explorer page is package data: the wheel's copy is the checkout's docs/explorer.html
    page = tmp_path / "explain" / "explorer.html"
    assert page.read_bytes() == (REPO / "docs" / "explorer.html").read_bytes()
    bad = _run([installed / "convscope-run", "data.path=missing.wav"], cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: data.path: {tmp_path / 'missing.wav'} does not exist"]


def test_convscope_learn_is_installed(installed, tmp_path):
    proc = _run([installed / "convscope-learn", "--help"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "learn" in proc.stdout


def test_the_one_command_is_installed_with_its_help_and_tensorboard(installed, tmp_path):
    listed = _run([installed / "convscope", "--help"], cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "tensorboard" in listed.stdout and "explain" in listed.stdout
    # the help quotes the installed configs' comments (convscope/configs in the wheel)
    run_help = _run([installed / "python", "-m", "convscope", "run", "--help"], cwd=tmp_path)
    assert run_help.returncode == 0, run_help.stderr
    assert "tensorboard=false" in run_help.stdout and "model=seed_example" in run_help.stdout
    out = tmp_path / "run"
    ran = _run([installed / "convscope", "run", "plots.enabled=false", "tensorboard=true",
                f"hydra.run.dir={out}"], cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert [p.name for p in (out / "tensorboard").iterdir()][0].startswith("events.out.tfevents")


def test_the_slurm_launcher_ships_in_the_wheel(installed, tmp_path):
    """hydra/launcher=submitit_slurm resolves to convscope's launcher (a hydra_plugins package of
    the wheel), and with no SLURM reachable a sweep is one `error:` line."""
    shown = _run([installed / "convscope-run", "hydra/launcher=submitit_slurm", "--cfg", "hydra"],
                 cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "hydra_plugins.convscope_slurm_launcher.slurm_launcher.SlurmLauncher" in shown.stdout
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = str(installed)  # no srun, sbatch or sinfo
    swept = subprocess.run([str(installed / "convscope-run"), "-m", "hydra/launcher=submitit_slurm",
                            "plots.enabled=false", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert swept.returncode == 2 and swept.stderr.count("\n") == 1, swept.stderr
    assert swept.stderr.startswith("error: hydra/launcher=submitit_slurm: ")
