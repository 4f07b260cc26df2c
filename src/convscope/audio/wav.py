"""Writing WAVs: one clipping gain that only scales down, written atomically."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

from convscope.files import atomic_path


def clipping_gain(peak_in: float, target_peak: float) -> float:
    """Scale down (never up) so the loudest sample is at most `target_peak`."""
    if not math.isfinite(peak_in) or peak_in <= target_peak:
        return 1.0
    return target_peak / peak_in


def write_wav(path: Path, samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16",
              gain: Optional[float] = None) -> None:
    """Write (channels, length) or (length,) samples; atomically, so a crash leaves no WAV."""
    import soundfile  # loads libsndfile (cffi) on import: only when a WAV is written

    data = np.asarray(samples, dtype=np.float32)
    if gain is not None:
        data = data * np.float32(gain)
    frames = data.T if data.ndim == 2 else data  # soundfile wants (frames, channels)
    with atomic_path(path) as tmp:
        soundfile.write(str(tmp), frames, int(sample_rate), subtype=subtype, format="WAV")
