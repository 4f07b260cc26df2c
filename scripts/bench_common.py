"""What every benchmark case shares: where things are, running a child process and reading its
peak memory, the machine's load, the synthetic long WAVs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "scripts" / "bench.py"  # its hidden --worker/--floor/... flags run the children
PY = sys.executable
SR = 16000

def run_child_rss(args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one subprocess, reaped with wait4 so its own
    ru_maxrss is known (RUSAGE_CHILDREN would give the largest child so far)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        raise SystemExit(f"error: {' '.join(args[1:4])} failed ({proc.returncode}): "
                         f"{stderr[-800:]}")
    return wall, usage.ru_maxrss / 1024, stdout


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def mem_available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return float("inf")


def machine() -> dict:
    """What the numbers were measured on: cores, CPU model, memory, GPU, torch."""
    import platform

    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    cores = len(os.sched_getaffinity(0))
    summary = (f"{cores} cores ({cpu}), {memory_gb:.0f} GB, "
               f"{'GPU ' + gpu if gpu else 'no GPU'}, torch {torch.__version__}")
    return {"cores": cores, "cpu": cpu, "memory_gb": round(memory_gb, 1), "gpu": gpu,
            "torch": torch.__version__, "summary": summary}


def long_wav(seconds: float, sr: int = SR) -> Path:
    """`seconds` of synthetic audio at `sr` (scripts/make_long_audio.py), cached in the temp
    folder: every case that needs one reads the same file."""
    suffix = "" if sr == SR else f"_{sr}"
    wav = Path(tempfile.gettempdir()) / f"convscope_bench_{int(seconds)}s{suffix}.wav"
    if not wav.exists():
        subprocess.run([PY, "scripts/make_long_audio.py", "--seconds", str(seconds), "--sr",
                        str(sr), "--out", str(wav)], cwd=REPO, check=True, capture_output=True)
    return wav

