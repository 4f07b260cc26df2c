"""Reading a segment block by block and writing WAVs incrementally.

`AudioBlocks` yields the same samples `librosa.load(path, sr, mono, offset, duration)` returns,
in blocks: it seeks and counts frames as librosa does, mixes to mono by the channel mean and
resamples with soxr's streaming resampler at the quality librosa uses ('HQ' = soxr_hq), whose
output is bit-identical to soxr's one-shot call; the length is then fixed to ceil(n * ratio) as
librosa does. Only soundfile-readable files can be streamed (`audio.read_header` is not None).
"""

from __future__ import annotations

import math
import struct
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from convscope.audio.wav import sndfile_write_errors
from convscope.config.schema import DataConfig
from convscope.errors import ConvscopeError
from convscope.files import atomic_path

WAV_LIMIT_BYTES = 2**32 - 1  # RIFF sizes are 32-bit: bigger outputs go to RF64


@dataclass(frozen=True)
class SegmentSpan:
    """Where a segment lies in its file, in the file's frames, and its length at the target rate."""

    path: Path
    file_rate: int
    first_frame: int
    frames: int
    sample_rate: int
    channels: int  # after the mono mix
    length: int  # samples at sample_rate
    start: float
    end: float

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1, self.channels, self.length)


# Formats whose frame count libsndfile reports as an estimate. For MPEG it is mpg123's guess
# from the file size and the first frame's bitrate when the file has no Xing/Info header: a VBR
# MP3 that starts quietly claims 148,032 frames and decodes to 43,200 (tests/test_audio_length.py).
ESTIMATED_LENGTH_FORMATS = frozenset({"MP3"})
COUNT_BLOCK_FRAMES = 1 << 16


def sound_info(path: Path):
    """soundfile's header of `path`, its frame count (and duration) decoded to the end where
    the header's count is only an estimate. Raises what soundfile.info raises."""
    import soundfile  # loads libsndfile (cffi): only when a file is read

    info = soundfile.info(str(path))
    if info.format in ESTIMATED_LENGTH_FORMATS:
        info.frames = decoded_frames(path)
        info.duration = info.frames / info.samplerate
    return info


def decoded_frames(path: Path) -> int:
    """How many frames libsndfile actually decodes from `path` (one block buffer reused)."""
    import soundfile  # loads libsndfile (cffi): only when a file is read

    with soundfile.SoundFile(str(path)) as sf:
        buffer = np.empty((COUNT_BLOCK_FRAMES, sf.channels), dtype=np.float32)
        total = 0
        while count := len(sf.read(out=buffer)):
            total += count
    return total


def segment_span(path: Path, cfg: DataConfig, end: float, info=None) -> SegmentSpan:
    """Frame arithmetic exactly as librosa.load does it (int() truncation included).
    `info`: the file's header (sound_info) when the caller has read it already."""
    if info is None:
        info = sound_info(path)
    first = int(cfg.start * info.samplerate) if cfg.start else 0
    frames = min(int((end - cfg.start) * info.samplerate), info.frames - first)
    length = frames if info.samplerate == cfg.sr else math.ceil(frames * cfg.sr / info.samplerate)
    channels = 1 if cfg.mono else info.channels
    return SegmentSpan(path, info.samplerate, first, frames, cfg.sr, channels, length, cfg.start,
                       end)


def read_segment(path: Path, cfg: DataConfig, end: float, info=None) -> np.ndarray:
    """The whole segment at once, (channels, n): librosa.load's samples without librosa.

    The caller checks for NaN/inf (the resampler spreads them, so the check comes after it).
    """
    span = segment_span(path, cfg, end, info)
    blocks = list(audio_blocks(span, max(1, span.frames), check_finite=False))
    if not blocks:
        return np.zeros((span.channels, 0), dtype=np.float32)
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=-1)


def audio_blocks(span: SegmentSpan, block_frames: int,
                 check_finite: bool = True) -> Iterator[np.ndarray]:
    """(channels, n) float32 blocks at span.sample_rate, span.length samples in all."""
    import soundfile  # loads libsndfile (cffi) on import: only when a file is read

    resampler = None
    if span.file_rate != span.sample_rate:
        import soxr  # only when the file's rate is not the one asked for

        resampler = soxr.ResampleStream(span.file_rate, span.sample_rate, span.channels,
                                        dtype="float32", quality="HQ")
    produced, read = 0, 0
    with soundfile.SoundFile(str(span.path)) as sf:
        sf.seek(span.first_frame)
        while read < span.frames:
            n = min(block_frames, span.frames - read)
            frames = sf.read(n, dtype="float32", always_2d=True)  # (n, file channels)
            if len(frames) == 0:
                raise ConvscopeError(f"data.path: {span.path} ended after {read} of "
                                     f"{span.frames} frames: the file is truncated")
            if check_finite:
                _check_finite(frames, span, read)
            # a mono file is its own mix (the mean of one value is that value): no copy
            mixed = frames.mean(axis=1, keepdims=True) \
                if span.channels == 1 and frames.shape[1] > 1 else frames
            read += len(frames)
            if resampler is not None:
                mixed = resampler.resample_chunk(mixed, last=read >= span.frames)
            block = np.ascontiguousarray(mixed[: span.length - produced].T)
            produced += block.shape[-1]
            if block.shape[-1]:
                yield block
    if produced < span.length:  # librosa pads the resampled tail with zeros to ceil(n * ratio)
        yield np.zeros((span.channels, span.length - produced), dtype=np.float32)


def _check_finite(frames: np.ndarray, span: SegmentSpan, read: int) -> None:
    bad = ~np.isfinite(frames)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise ConvscopeError(
            f"data.path: {span.path} holds non-finite samples (NaN or inf), the first at "
            f"{span.start + (read + first) / span.file_rate:.6f} s")


class WavWriters:
    """WAVs written block by block to temp names, renamed only when all are complete.

    Either several mono files (one per row of each block) or one file of `channels` channels.
    Used as a context manager: an exception anywhere before the end leaves no WAV behind.
    """

    def __init__(self, paths: list[Path], sample_rate: int, subtype: str, total_frames: int,
                 channels: int = 1):
        if channels > 1 and len(paths) != 1:
            raise ValueError("a multichannel WavWriters writes exactly one file")
        self.paths = paths
        self.sample_rate = sample_rate
        self.subtype = subtype
        self.channels = channels
        # RIFF sizes are 32-bit; libsndfile's RF64 is the WAV-compatible format past 4 GB
        bytes_per_frame = (8 if subtype == "DOUBLE" else 4) * channels
        self.format = "RF64" if total_frames * bytes_per_frame > WAV_LIMIT_BYTES else "WAV"
        self._stack = ExitStack()
        self._files: list = []

    def __enter__(self) -> "WavWriters":
        import soundfile  # loads libsndfile (cffi) on import: only when WAVs are written

        with ExitStack() as stack:
            for path in self.paths:
                tmp = stack.enter_context(atomic_path(path))
                if self.subtype == "FLOAT" and self.format == "WAV":
                    wav = FloatWav(tmp, self.sample_rate, self.channels)
                else:
                    with sndfile_write_errors(path):
                        wav = soundfile.SoundFile(str(tmp), "w", self.sample_rate,
                                                  self.channels, self.subtype, format=self.format)
                self._files.append(stack.enter_context(wav))
            self._stack = stack.pop_all()
        return self

    def write(self, block: np.ndarray) -> None:
        """A (rows, n) block: one row per mono file, or all rows into the multichannel file."""
        if self.channels > 1:
            with sndfile_write_errors(self.paths[0]):
                self._files[0].write(block.T)
            return
        for path, sf, samples in zip(self.paths, self._files, block):
            with sndfile_write_errors(path):
                sf.write(samples)

    def __exit__(self, *exc_info) -> bool:
        return bool(self._stack.__exit__(*exc_info))


class FloatWav:
    """A 32-bit float WAV (format 3) written as raw little-endian samples after a 58-byte header
    that is patched with the sizes on close.

    The streamed run's default output: about 3x faster than libsndfile's per-sample conversion
    loop (0.15 s vs 0.5 s per 460 MB), which was a tenth of an hour-long run.
    """

    HEADER = struct.Struct("<4sI4s4sIHHIIHHH4sII4sI")

    def __init__(self, path: Path, sample_rate: int, channels: int):
        self.path, self.sample_rate, self.channels = Path(path), sample_rate, channels
        self.frames = 0
        self._file = None

    def __enter__(self) -> "FloatWav":
        self._file = open(self.path, "wb")
        with self._named_errors():
            self._file.write(self._header())
        return self

    def write(self, frames: np.ndarray) -> None:
        """(n,) or (n, channels) samples."""
        data = np.ascontiguousarray(frames, dtype="<f4")
        with self._named_errors():
            self._file.write(memoryview(data).cast("B"))
        self.frames += data.shape[0]

    @contextmanager
    def _named_errors(self) -> Iterator[None]:
        """write()'s errors (ENOSPC) name no file; of several WAVs, say which one failed."""
        try:
            yield
        except OSError as exc:
            if exc.filename is not None or exc.errno is None:
                raise
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc

    def _header(self) -> bytes:
        data_bytes = self.frames * self.channels * 4
        return self.HEADER.pack(
            b"RIFF", 50 + data_bytes, b"WAVE",
            b"fmt ", 18, 3, self.channels, self.sample_rate, self.sample_rate * self.channels * 4,
            self.channels * 4, 32, 0,
            b"fact", 4, self.frames,
            b"data", data_bytes)

    def __exit__(self, *exc_info) -> bool:
        with self._named_errors():
            try:
                if exc_info[0] is None:
                    self._file.seek(0)
                    self._file.write(self._header())
            finally:
                self._file.close()
        return False
