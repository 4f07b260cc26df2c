"""Shared fixtures: the repo root, WAV factories and a runner for the entry scripts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture
def make_wav(tmp_path):
    """Write a test tone: make_wav(name, seconds=, sr=, channels=, subtype=, format=)."""

    def make(name: str = "tone.wav", seconds: float = 1.5, sr: int = 16000, channels: int = 1,
             subtype: str = "PCM_16", format: str | None = None, data: np.ndarray | None = None):
        path = tmp_path / name
        if data is None:
            t = np.arange(int(seconds * sr)) / sr
            data = np.stack([0.5 * np.sin(2 * np.pi * (220 * (c + 1)) * t)
                             for c in range(channels)], axis=1)
        soundfile.write(str(path), data, sr, subtype=subtype, format=format)
        return path

    return make


def run_script(script: str, *overrides: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run scripts/<script> as a user would, capturing its output."""
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *overrides], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
