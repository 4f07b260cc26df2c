"""Loading a segment of an audio file (writing WAVs: audio.wav).

Every way a file or a segment request can be wrong is turned into a ConvscopeError that names the
file and the values, because librosa's own errors (or silent empty arrays) don't.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convscope.audio.blockio import read_segment
from convscope.config.schema import DataConfig
from convscope.errors import ConvscopeError


@dataclass(frozen=True)
class Segment:
    """A loaded stretch of audio: samples (channels, length) float32 at `sample_rate`."""

    samples: np.ndarray
    sample_rate: int
    path: Path
    start: float
    end: float

    @property
    def shape(self) -> tuple[int, int, int]:
        """The (N, C, L) shape the stack sees."""
        return (1, *self.samples.shape)


def resolve_path(path: str, base_dir: Path) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else (base_dir / candidate)


def read_header(path: Path):
    """soundfile's header of the file (frames, rate, channels), or None if soundfile can't read it
    (librosa's audioread fallback may still decode it). Read once and passed on."""
    import soundfile  # loads libsndfile (cffi) on import: only when a file is read

    try:
        return soundfile.info(str(path))
    except Exception:
        return None


def file_duration(path: Path, header=None) -> float:
    """Duration in seconds from the header (no decoding); raises for undecodable files."""
    if header is not None:
        return header.frames / header.samplerate
    import soundfile  # loads libsndfile (cffi) on import: only without a header in hand

    try:
        header = soundfile.info(str(path))
        return header.frames / header.samplerate
    except Exception as soundfile_exc:  # try librosa's fallback decoders before giving up
        import librosa

        try:
            with warnings.catch_warnings():  # librosa warns that its audioread fallback is old
                warnings.simplefilter("ignore")
                return float(librosa.get_duration(path=str(path)))
        except Exception as exc:
            # audioread's errors are often empty (NoBackendError()); soundfile's say what it saw
            reason = re.sub(r"^Error opening .*?: ", "", str(soundfile_exc)) or type(exc).__name__
            raise ConvscopeError(
                f"data.path: cannot decode {path} as audio: {reason}") from exc


def load_segment(cfg: DataConfig, base_dir: Path) -> Segment:
    """Load [start, end) of cfg.path, resampled to cfg.sr, mono or all channels."""
    path = resolve_path(cfg.path, base_dir)
    _check_file(path)
    header = read_header(path)
    duration = file_duration(path, header)
    if duration <= 0:
        raise ConvscopeError(f"data.path: {path} is empty (0 samples)")
    end = duration if cfg.end is None else cfg.end
    _check_segment(path, cfg.start, end, duration)
    samples = _decode(path, cfg, end, header)
    if samples.shape[-1] == 0:
        raise ConvscopeError(
            f"data.start/data.end: segment {cfg.start}-{end} s of {path} holds no samples at "
            f"{cfg.sr} Hz")
    if not np.isfinite(samples).all():
        raise _non_finite_error(path, cfg.start, end)
    return Segment(samples, cfg.sr, path, cfg.start, end)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ConvscopeError(f"data.path: {path} does not exist")
    if path.is_dir():
        raise ConvscopeError(f"data.path: {path} is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise ConvscopeError(f"data.path: {path} is empty (0 bytes)")


def _check_segment(path: Path, start: float, end: float, duration: float) -> None:
    if start < 0:
        raise ConvscopeError(f"data.start must be >= 0, got {start}")
    if start >= duration:
        raise ConvscopeError(
            f"data.start: {start} s is past the end of {path}, which lasts {duration:.3f} s")
    if start >= end:
        raise ConvscopeError(f"data.start must be smaller than data.end, got start={start} end={end}")
    # A little slack: header durations and requested ends are both rounded to samples.
    if end > duration + 1e-6:
        raise ConvscopeError(
            f"data.end: segment {start}-{end} s is past the end of {path}, which lasts "
            f"{duration:.3f} s")


def _decode(path: Path, cfg: DataConfig, end: float, header) -> np.ndarray:
    if header is not None:
        # soundfile + soxr give librosa.load's exact samples (tests/test_bench.py) without
        # importing librosa and numba, which cost ~1.5 s of a 1 s example's run time
        try:
            return read_segment(path, cfg, end, header)
        except Exception as exc:
            raise ConvscopeError(
                f"data.path: cannot decode {path} as audio ({type(exc).__name__}: {exc})") from exc
    # librosa (and numba) cost about a second to import: only for files soundfile can't decode
    import librosa

    try:
        with warnings.catch_warnings():  # formats soundfile can't read go through audioread
            warnings.filterwarnings("ignore", message="PySoundFile failed")
            warnings.filterwarnings("ignore", category=FutureWarning, module="librosa")
            samples, _ = librosa.load(str(path), sr=cfg.sr, mono=cfg.mono, offset=cfg.start,
                                      duration=end - cfg.start, dtype=np.float32)
    except Exception as exc:
        if "not finite" in str(exc):  # librosa checks this itself, without saying where
            raise _non_finite_error(path, cfg.start, end) from exc
        raise ConvscopeError(
            f"data.path: cannot decode {path} as audio ({type(exc).__name__}: {exc})") from exc
    return np.atleast_2d(samples).astype(np.float32, copy=False)


def _non_finite_error(path: Path, start: float, end: float) -> ConvscopeError:
    """Say how many samples are NaN/inf and where the first one is, in the file's own time."""
    import soundfile  # loads libsndfile (cffi) on import: only on this error path

    with soundfile.SoundFile(str(path)) as f:
        rate = f.samplerate
        f.seek(int(start * rate))
        raw = f.read(int(round((end - start) * rate)), dtype="float32", always_2d=True)
    bad = ~np.isfinite(raw)
    if not bad.any():  # only the resampled signal went non-finite
        return ConvscopeError(f"data.path: {path} gives non-finite samples after resampling")
    first = int(np.argwhere(bad)[0][0])
    return ConvscopeError(
        f"data.path: {path} holds {int(bad.any(axis=1).sum())} non-finite samples (NaN or inf) "
        f"in {start}-{end} s, the first at {start + first / rate:.6f} s")
