"""Feature frontends: the stack's input as frames of a spectrogram of the loaded audio.

`data.features` picks what the stack takes in: `waveform` (the Segment itself), `stft` (|STFT|,
n_fft // 2 + 1 linear bins), `mel` (a Slaney mel filterbank, librosa's and HiFi-GAN's default, on
sqrt(|STFT|^2 + 1e-9), as HiFi-GAN's meldataset.mel_spectrogram computes it) or `log_mel` (the
natural log of that mel clamped at 1e-5: HiFi-GAN's spectral_normalize, what vocoders take in).

Framing: `center=false` is HiFi-GAN's: reflect-pad (n_fft - hop) / 2 on each side, then frames
without centring, so T = samples // hop and T x hop is the audio rounded down to a hop (the odd
sample of an odd n_fft - hop goes on the right; HiFi-GAN's presets all have it even).
`center=true` is librosa.stft's centred frames (n_fft // 2 zeros on each side, librosa's default
pad_mode), T = 1 + samples // hop for an even n_fft.

The frames come at sr / hop_length per second, kept as an exact Fraction (22050/256 Hz); the
audio stays beside them as the target for alignment and listening.

`precomputed` frames are read, not computed: data.path is a .npy or .pt of [C, T] or [1, C, T]
floats (a TTS model's mel, a codec's latents) at data.frame_rate frames per second. There is no
target audio (target None): nothing to write as input.wav, nothing to evaluate against.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

from convscope.audio.segment import Segment
from convscope.config.schema import DataConfig
from convscope.errors import ConvscopeError
from convscope.text import fmt_bytes

log = logging.getLogger("convscope")
MEL_FLOOR = 1e-9  # HiFi-GAN: sqrt(re^2 + im^2 + 1e-9), so the magnitude is never exactly 0
LOG_CLAMP = 1e-5  # HiFi-GAN's spectral_normalize: log(clamp(x, min=1e-5))
FRAMES_PER_CHUNK = 2048  # STFT frames computed at once: bounded memory for long segments


@dataclass(frozen=True)
class FeatureSettings:
    """How the frames were made, with the defaults resolved (win_length, fmax)."""

    kind: str
    sr: int
    n_fft: int
    hop_length: int
    win_length: int
    n_mels: int
    fmin: float
    fmax: float
    center: bool
    # a checkpoint frontend's details (configs/frontend/*.yaml); the defaults are HiFi-GAN's
    mel_scale: str = "slaney"
    mel_norm: Optional[str] = "slaney"
    power_floor: float = MEL_FLOOR
    log_floor: float = LOG_CLAMP
    log_base: str = "e"
    pad_mode: Optional[str] = None
    frontend: Optional[str] = None

    @classmethod
    def from_config(cls, data: DataConfig) -> "FeatureSettings":
        return cls(data.features, data.sr, data.n_fft, data.hop_length,
                   data.n_fft if data.win_length is None else data.win_length, data.n_mels,
                   float(data.fmin), data.sr / 2 if data.fmax is None else float(data.fmax),
                   data.center, data.mel_scale, data.mel_norm, float(data.power_floor),
                   float(data.log_floor), str(data.log_base), data.pad_mode, data.frontend)

    @property
    def padding(self) -> str:
        """How the audio's ends are padded: pad_mode, else HiFi-GAN's reflect (center=false)
        or librosa's zeros (center=true)."""
        return self.pad_mode or ("constant" if self.center else "reflect")

    @property
    def is_precomputed(self) -> bool:
        return self.kind == "precomputed"

    @property
    def is_mel(self) -> bool:
        return self.kind in ("mel", "log_mel")

    @property
    def bins(self) -> int:
        return self.n_mels if self.is_mel else self.n_fft // 2 + 1

    @property
    def frame_rate(self) -> Fraction:
        return Fraction(self.sr, self.hop_length)

    def frames(self, samples: int) -> int:
        """T for `samples` of audio (see the module docstring)."""
        if self.center:  # librosa: 1 + samples // hop (one frame fewer on a hop for odd n_fft)
            return 1 + (samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length
        return samples // self.hop_length

    def bin_frequencies(self) -> np.ndarray:
        """Each bin's frequency in Hz: mel band centres (librosa.mel_frequencies, the filterbank's
        own centres) or the linear STFT bins; the y axis of a feature image."""
        if self.is_mel:
            import librosa  # about a second to import (numba): feature runs only

            return librosa.mel_frequencies(self.n_mels + 2, fmin=self.fmin, fmax=self.fmax,
                                           htk=self.mel_scale == "htk")[1:-1]
        return np.arange(self.bins) * self.sr / self.n_fft

    @property
    def bin_label(self) -> str:
        return "mel band" if self.is_mel else "STFT bin"

    def as_json(self) -> dict:
        if self.is_precomputed:  # read from a file: the STFT keys did not make these frames
            return {"kind": self.kind, "hop_length": self.hop_length, "center": self.center}
        mel = {"mel_scale": self.mel_scale, "mel_norm": self.mel_norm,
               "power_floor": self.power_floor, "log_floor": self.log_floor,
               "log_base": self.log_base} if self.is_mel else {}
        return {"kind": self.kind, "frontend": self.frontend, "n_fft": self.n_fft,
                "hop_length": self.hop_length, "win_length": self.win_length,
                "n_mels": self.n_mels if self.is_mel else None, "fmin": self.fmin,
                "fmax": self.fmax, "center": self.center, "pad_mode": self.padding, **mel}


@dataclass(frozen=True)
class FeatureInput:
    """Frames (bins, T) float32 at `sample_rate` frames per second, usable where the pipeline
    takes a Segment; `target` is the audio they were computed from (None: precomputed frames,
    read from `origin`)."""

    samples: np.ndarray
    sample_rate: Fraction
    target: Optional[Segment]
    settings: FeatureSettings
    origin: Optional[Path] = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """The (N, C, L) shape the stack sees: (1, bins, T)."""
        return (1, *self.samples.shape)

    @property
    def channels(self) -> int:
        """Bins: the stack input's channels (as a SegmentSpan's, for the pre-flight estimate)."""
        return self.samples.shape[0]

    @property
    def length(self) -> int:
        """T frames: the stack input's length."""
        return self.samples.shape[-1]

    @property
    def path(self) -> Path:
        return self.origin if self.target is None else self.target.path

    @property
    def start(self) -> float:
        return 0.0 if self.target is None else self.target.start

    @property
    def end(self) -> float:
        return float(self.length / self.sample_rate) if self.target is None else self.target.end

    def summary(self) -> str:
        s = self.settings
        if self.target is None:
            return (f"precomputed frames: {self.channels} channels x {self.length} frames at "
                    f"{self.sample_rate} frames/s; no target audio (no input.wav, no evaluate)")
        log_name = "log10" if s.log_base == "10" else "log"
        bands = (f"{s.n_mels} {s.mel_scale} mel bands {s.fmin:g}-{s.fmax:g} Hz (norm "
                 f"{s.mel_norm or 'none'}, {log_name} floor {s.log_floor:g}), "
                 if s.is_mel else "")
        by = f"frontend={s.frontend}" if s.frontend else "the data.* keys (no frontend=)"
        return (f"{s.kind} frames by {by}: {bands}n_fft {s.n_fft}, hop {s.hop_length}, win "
                f"{s.win_length}, center={str(s.center).lower()} ({s.padding} padding); target "
                f"audio {list(self.target.shape)} at {self.target.sample_rate} Hz")


def compute_features(segment: Segment, data: DataConfig,
                     limit_bytes: int | None = None) -> FeatureInput:
    """The stack input `data.features` asks for, from a loaded mono segment; refused naming
    data.n_fft and data.hop_length when making it would take more than `limit_bytes`."""
    if data.features == "waveform":
        raise ValueError("compute_features is for feature inputs; a waveform is the Segment")
    if segment.samples.shape[0] != 1:
        # averaging would quietly be data.mono=true; a feature stack takes one spectrogram
        raise ConvscopeError(
            f"data.mono: data.features={data.features} needs one channel, but data.mono=false "
            f"loaded {segment.samples.shape[0]} from {segment.path}; set data.mono=true")
    settings = FeatureSettings.from_config(data)
    length = segment.samples.shape[-1]
    if settings.frames(length) < 1:
        raise ConvscopeError(
            f"data.hop_length: a {length}-sample segment gives no frame of {settings.hop_length} "
            f"samples (center=false needs at least one hop); lengthen data.start-data.end")
    needed = feature_bytes(settings, length)
    if limit_bytes is not None and needed > limit_bytes:
        raise ConvscopeError(
            f"data.n_fft: {data.features} frames of n_fft={settings.n_fft}, "
            f"hop_length={settings.hop_length} on {length} samples would take "
            f"~{fmt_bytes(needed)} ({settings.bins} bins x {settings.frames(length)} frames, "
            f"plus a chunk's STFT), more than the memory limit of {fmt_bytes(limit_bytes)}; "
            "lower data.n_fft, raise data.hop_length or shorten the segment (data.end)")
    if settings.is_mel and data.fmax is None and settings.frontend is None:
        log.warning("data.fmax is unset: the %d mel bands reach sr / 2 = %g Hz, while a "
                    "vocoder hears the bands it was trained on (HiFi-GAN: fmax 8000); name its "
                    "frontend (frontend=hifigan | bigvgan_24k | vocos | melgan) or set "
                    "data.fmax", settings.n_mels, settings.fmax)
    frames = feature_frames(segment.samples[0], settings)
    return FeatureInput(frames, settings.frame_rate, segment, settings)


def feature_bytes(settings: FeatureSettings, samples: int,
                  frames_per_chunk: int = FRAMES_PER_CHUNK) -> int:
    """Peak bytes of feature_frames: the float32 output, and for one chunk the padded audio,
    librosa's windowed frames (float32, n_fft a frame) and the complex64 spectrum with its
    magnitude (n_fft // 2 + 1 bins a frame, 8 + 4 bytes)."""
    count = max(settings.frames(samples), 0)
    chunk = min(count, frames_per_chunk)
    stft_bins = settings.n_fft // 2 + 1
    return (4 * settings.bins * count + 4 * (samples + settings.n_fft)
            + chunk * (4 * settings.n_fft + 12 * stft_bins))


def feature_frames(audio: np.ndarray, settings: FeatureSettings,
                   frames_per_chunk: int = FRAMES_PER_CHUNK) -> np.ndarray:
    """(bins, T) float32 frames of 1-D `audio`, computed a chunk of frames at a time."""
    import librosa  # about a second to import (numba): feature runs only

    padded = _pad(np.asarray(audio, dtype=np.float32), settings)
    count = settings.frames(len(audio))
    hop, n_fft = settings.hop_length, settings.n_fft
    mel_basis = librosa.filters.mel(sr=settings.sr, n_fft=n_fft, n_mels=settings.n_mels,
                                    fmin=settings.fmin, fmax=settings.fmax,
                                    htk=settings.mel_scale == "htk", norm=settings.mel_norm) \
        if settings.is_mel else None
    out = np.empty((settings.bins, count), dtype=np.float32)
    for first in range(0, count, frames_per_chunk):
        stop = min(count, first + frames_per_chunk)
        # frames first..stop-1 read padded[first*hop : (stop-1)*hop + n_fft], no centring
        chunk = padded[first * hop: (stop - 1) * hop + n_fft]
        spectrum = librosa.stft(chunk, n_fft=n_fft, hop_length=hop,
                                win_length=settings.win_length, window="hann", center=False)
        out[:, first:stop] = _magnitude(spectrum, settings, mel_basis)
    return out


def _pad(audio: np.ndarray, settings: FeatureSettings) -> np.ndarray:
    if settings.center:  # librosa's default zeros; torchaudio's (Vocos) reflect
        half = settings.n_fft // 2
        return np.pad(audio, (half, half), mode=settings.padding)
    total = settings.n_fft - settings.hop_length
    left = total // 2  # HiFi-GAN: int((n_fft - hop_size) / 2) on each side
    # n_fft < hop (frames that skip samples) pads nothing: the frames start at sample 0
    return np.pad(audio, (max(left, 0), max(total - left, 0)), mode=settings.padding)


def _magnitude(spectrum: np.ndarray, settings: FeatureSettings,
               mel_basis: np.ndarray | None) -> np.ndarray:
    if mel_basis is None:
        return np.abs(spectrum)
    magnitude = np.sqrt(spectrum.real ** 2 + spectrum.imag ** 2 + settings.power_floor)
    mel = mel_basis @ magnitude
    if settings.kind != "log_mel":
        return mel
    floored = np.maximum(mel, settings.log_floor)
    return np.log10(floored) if settings.log_base == "10" else np.log(floored)


def load_precomputed(path: Path, data: DataConfig) -> FeatureInput:
    """data.features=precomputed: the [C, T] or [1, C, T] float frames stored in `path` (.npy,
    or a tensor saved by torch.save in a .pt), at data.frame_rate frames per second."""
    rate = parse_frame_rate(data.frame_rate)
    if path.suffix.lower() == ".npy":
        try:
            frames = np.load(path, allow_pickle=False)  # no pickled code runs
        except (OSError, ValueError) as exc:
            raise ConvscopeError(f"data.path: {path} is not a .npy file numpy can read "
                                 f"({type(exc).__name__}: {exc})") from exc
    elif path.suffix.lower() == ".pt":
        import torch  # audio/ stays torch-free until a .pt is read

        try:
            frames = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ConvscopeError(f"data.path: {path} is not a file torch.load(weights_only=True) "
                                 f"can read ({type(exc).__name__})") from exc
        if not isinstance(frames, torch.Tensor):
            raise ConvscopeError(f"data.path: {path} holds a {type(frames).__name__}, not a "
                                 "tensor of frames; torch.save(mel, path) with mel [C, T]")
        frames = frames.detach().numpy()
    else:
        raise ConvscopeError(f"data.path: data.features=precomputed reads .npy or .pt frames, "
                             f"got {path.name}")
    if frames.ndim == 3 and frames.shape[0] == 1:
        frames = frames[0]
    if frames.ndim != 2 or not np.issubdtype(frames.dtype, np.floating):
        raise ConvscopeError(f"data.path: {path} holds {frames.dtype} of shape "
                             f"{list(frames.shape)}; precomputed frames are float [C, T] or "
                             "[1, C, T]")
    if frames.shape[-1] < 1:
        raise ConvscopeError(f"data.path: {path} holds no frames (shape {list(frames.shape)})")
    finite = np.isfinite(frames)
    if not finite.all():
        raise ConvscopeError(f"data.path: {path} holds {int((~finite).sum())} non-finite "
                             f"value(s) (NaN or inf) of {frames.size}")
    return FeatureInput(np.ascontiguousarray(frames, dtype=np.float32), rate, None,
                        FeatureSettings.from_config(data), origin=path)


def check_frame_channels(frames: FeatureInput, in_channels: Optional[int], layer: str) -> None:
    """Precomputed frames must have the channels the first layer takes (n_mels of a vocoder,
    the latent size of a codec decoder): worded here rather than as torch's shape error."""
    if frames.target is None and in_channels is not None and frames.channels != in_channels:
        raise ConvscopeError(f"data.path: {frames.path} holds {frames.channels} channels x "
                             f"{frames.length} frames, but {layer} takes in_channels="
                             f"{in_channels}")


def parse_frame_rate(text: Optional[str]) -> Fraction:
    """data.frame_rate as an exact Fraction: "22050/256", "86.1328125" or 86."""
    if text is None:
        raise ConvscopeError("data.frame_rate: data.features=precomputed needs the frames' rate "
                             "in frames per second, e.g. data.frame_rate=22050/256")
    try:
        rate = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError) as exc:
        raise ConvscopeError(f"data.frame_rate must be a number or a fraction like 22050/256, "
                             f"got {text!r}") from exc
    if rate <= 0:
        raise ConvscopeError(f"data.frame_rate must be > 0 frames per second, got {text!r}")
    return rate
