"""Writing WAVs: one clipping gain that only scales down, written atomically."""

from __future__ import annotations

import errno
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

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
    with atomic_path(path) as tmp, sndfile_write_errors(path):
        soundfile.write(str(tmp), frames, int(sample_rate), subtype=subtype, format="WAV")


SFE_SYSTEM = 2  # libsndfile's code for a failed system call, worded only as "System error."


@contextmanager
def sndfile_write_errors(path: Path) -> Iterator[None]:
    """libsndfile's failures to write `path` as the OSError behind them, naming `path`.

    A full disk, a file size limit or a lost permission reach us from libsndfile as the bare
    "System error."; the errno of its failed call is still in cffi's errno, which is what the
    user needs to hear (and what convscope.cli turns into one line). Other libsndfile errors
    (a format it cannot write) are bugs of ours and stay as they are.
    """
    import soundfile  # loads libsndfile (cffi): only when a WAV is written

    try:
        yield
    except soundfile.LibsndfileError as exc:
        if exc.code != SFE_SYSTEM:
            raise
        raise _system_error(path, getattr(getattr(soundfile, "_ffi", None), "errno", 0)) from exc


def _system_error(path: Path, code: int) -> OSError:
    if not code:  # errno lost: the disk's free space is the one cause we can still check
        try:
            stats = os.statvfs(Path(path).parent)
            code = errno.ENOSPC if stats.f_bavail * stats.f_frsize == 0 else 0
        except OSError:
            code = 0
    if code:
        return OSError(code, f'{os.strerror(code)}, which libsndfile reports as "System error."',
                       str(path))
    return OSError(None, "libsndfile could not write it (System error.); a full disk, a file "
                         "size limit or missing permissions are the usual causes", str(path))
