"""Shared fixtures: the repo root and WAV factories (plain helpers: tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.helpers import REPO


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
