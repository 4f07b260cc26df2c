"""Synthesize data/sample.wav deterministically: harmonic notes with envelopes plus a chirp.

22050 Hz on purpose, so loading at the default 16 kHz really resamples. 4.5 s of 16-bit mono
(~200 KB). Seconds 2-3, the reference segment, hold a note change and the rising chirp, which
shows in both waveform and spectrogram plots.

    python scripts/make_sample_audio.py [--out data/sample.wav]

`--kind tone` and `--kind constant` write the artifact probes data/tone.wav (a 1 kHz sine) and
data/constant.wav (0.5 throughout), 1 s each at 16 kHz, the rate the stack sees, so loading
doesn't resample them (a resampler would smear the constant's edges and the tone's purity).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 22050
DURATION = 4.5
# A short melody (Hz): each note lasts NOTE_SECONDS, with decaying harmonics.
MELODY = (220.0, 277.18, 329.63, 440.0, 392.0, 329.63, 293.66, 246.94, 220.0)
NOTE_SECONDS = 0.5
HARMONICS = 8


def note(freq: float, t: np.ndarray) -> np.ndarray:
    """A plucked-string-like tone: harmonics at 1/n amplitude, higher ones decaying faster."""
    attack = np.minimum(t / 0.01, 1.0)
    tone = np.zeros_like(t)
    for n in range(1, HARMONICS + 1):
        tone += np.sin(2 * np.pi * n * freq * t) / n * np.exp(-t * (2.0 + 1.5 * n))
    return attack * tone


def chirp(t: np.ndarray, f0: float = 150.0, f1: float = 7000.0) -> np.ndarray:
    """Exponential sweep from f0 to f1 over the span of t, with raised-cosine fades."""
    span = t[-1] - t[0]
    k = np.log(f1 / f0) / span
    phase = 2 * np.pi * f0 * (np.exp(k * (t - t[0])) - 1) / k
    fade = np.minimum(1.0, np.minimum(t - t[0], t[-1] - t) / 0.1)
    return np.sin(phase) * 0.5 * (1 - np.cos(np.pi * fade))


def synthesize() -> np.ndarray:
    t = np.arange(int(SAMPLE_RATE * DURATION)) / SAMPLE_RATE
    out = np.zeros_like(t)
    for i, freq in enumerate(MELODY):
        start = int(i * NOTE_SECONDS * SAMPLE_RATE)
        local = t[: len(t) - start]
        out[start:] += note(freq, local)
    sweep = (t >= 1.5) & (t < 3.5)
    out[sweep] += 0.25 * chirp(t[sweep])
    return (0.9 * out / np.max(np.abs(out))).astype(np.float32)


PROBE_RATE, PROBE_SECONDS = 16000, 1.0
TONE_HZ, PROBE_LEVEL = 1000.0, 0.5


def probe(kind: str) -> np.ndarray:
    """The artifact probes: a pure tone, or a constant (which an even kernel keeps constant)."""
    t = np.arange(int(PROBE_RATE * PROBE_SECONDS)) / PROBE_RATE
    if kind == "tone":
        return (PROBE_LEVEL * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    return np.full(len(t), PROBE_LEVEL, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("sample", "tone", "constant"), default="sample")
    parser.add_argument("--out", type=Path, help="default: data/<kind>.wav")
    args = parser.parse_args()
    out = args.out or Path(f"data/{args.kind}.wav")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.kind == "sample":
        samples, rate, seconds = synthesize(), SAMPLE_RATE, DURATION
    else:
        samples, rate, seconds = probe(args.kind), PROBE_RATE, PROBE_SECONDS
    soundfile.write(str(out), samples, rate, subtype="PCM_16")
    print(f"wrote {out} ({seconds} s at {rate} Hz)")


if __name__ == "__main__":
    main()
