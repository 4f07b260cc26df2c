"""Loading a segment of an audio file (writing WAVs: audio.wav).

Every way a file or a segment request can be wrong is turned into a ConvscopeError that names the
file and the values, because librosa's own errors (or silent empty arrays) don't.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convscope.audio.blockio import read_segment, sound_info
from convscope.config.schema import DataConfig
from convscope.errors import ConvscopeError
from convscope.oserrors import describe_os_error


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


def resolve_path(path: str, base_dir: Path, key: str = "data.path") -> Path:
    """`path` with `~` expanded, relative ones against base_dir (where the user ran from)."""
    if not str(path).strip():  # Path("") is ".": it would quietly become a corpus of base_dir
        raise ConvscopeError(f"{key} is empty: give an audio file, a folder or a glob "
                             f"({key}=. for the current folder)")
    try:
        candidate = Path(path).expanduser()
    except RuntimeError as exc:  # pathlib's words for an unknown ~user or no HOME
        user = str(path)[1:].split("/", 1)[0]
        who = f"there is no user {user!r} on this machine" if user else "HOME is not set"
        raise ConvscopeError(f"{key}: cannot expand {path!r}: {who}; write the path without "
                             "~") from exc
    return candidate if candidate.is_absolute() else (base_dir / candidate)


def read_header(path: Path):
    """soundfile's header of the file (frames, rate, channels), or None if soundfile can't read it
    (librosa's audioread fallback may still decode it). Read once and passed on; an MP3's
    frame count is decoded, not mpg123's estimate (blockio.sound_info)."""
    try:
        return sound_info(path)
    except Exception:
        return None


def file_duration(path: Path, header=None) -> float:
    """Duration in seconds from the header (an MP3 is decoded to count it: sound_info); raises
    for undecodable files."""
    if header is not None:
        return header.frames / header.samplerate
    try:
        header = sound_info(path)
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
    check_audio_file(path)
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


def check_audio_file(path: Path, key: str = "data.path") -> None:
    """Every way `path` can fail to be a readable regular file, worded before anything decodes
    it (soundfile and librosa call all of them "cannot decode" or read a FIFO forever)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ConvscopeError(f"{key}: {path_problem(path, exc)}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ConvscopeError(f"{key}: {path} is a directory, not an audio file")
    if not stat.S_ISREG(info.st_mode):  # never opened: reading a FIFO would block
        raise ConvscopeError(f"{key}: {path} is a {_file_kind(info.st_mode)}, not a regular "
                             "audio file; save the audio to a file and give that")
    if info.st_size == 0:
        raise ConvscopeError(f"{key}: {path} is empty (0 bytes)")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConvscopeError(f"{key}: {path_problem(path, exc)}") from exc


def path_problem(path: Path, exc: OSError) -> str:
    """What an OSError from stat()/open() of `path` means, with the part of the path at fault."""
    code = exc.errno
    if code == errno.ENOENT:
        if os.path.islink(path):
            return f"{path} is a symlink to {os.readlink(path)}, which does not exist"
        return f"{path} does not exist"
    if code == errno.ELOOP:
        return (f"{path} is a symlink loop (following its links leads back to a link already "
                "followed); fix or remove the link")
    if code == errno.ENAMETOOLONG:
        return _too_long(path)
    if code == errno.EACCES:
        blocked = _unsearchable_folder(path)
        if blocked is not None:
            return (f"{path}: permission denied: the folder {blocked} cannot be entered; "
                    "make it searchable (chmod +x) or copy the audio elsewhere")
        return (f"{path}: permission denied: the file cannot be read{_mode_of(path)}; make "
                "it readable (chmod +r) or copy it")
    if code == errno.ENOTDIR:
        return f"{path}: a part of the path is a file, not a folder"
    return describe_os_error(OSError(code, exc.strerror, str(path)))


def _mode_of(path: Path) -> str:
    try:
        return f" ({stat.filemode(os.stat(path).st_mode)})"
    except OSError:
        return ""


def _file_kind(mode: int) -> str:
    kinds = [(stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISCHR, "character device"),
             (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")]
    return next((name for test, name in kinds if test(mode)), "special file")


def _too_long(path: Path) -> str:
    limit = _name_max(path)
    longest = max(Path(path).parts, key=lambda part: len(os.fsencode(part)))
    size = len(os.fsencode(longest))
    if size > limit:
        return (f"{path}: a name in it is {size} bytes, over the filesystem's limit of {limit} "
                f"(starts {longest[:24]!r}); shorten it")
    return (f"{path}: the path is {len(os.fsencode(str(path)))} bytes, over the system's "
            "limit; shorten it")


def _name_max(path: Path) -> int:
    for folder in Path(path).parents:  # the nearest folder that exists says what its fs allows
        try:
            return os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError):
            continue
    return 255


def _unsearchable_folder(path: Path) -> Path | None:
    """The first folder on the way to `path` whose entries may not be looked up, if any."""
    parts = Path(path).parts
    for depth in range(1, len(parts)):
        child = Path(*parts[: depth + 1])
        try:
            os.lstat(child)
        except PermissionError:
            return Path(*parts[:depth])
        except OSError:
            return None
    return None


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
