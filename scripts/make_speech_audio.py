"""Make data/speech.wav: a short sentence from espeak-ng, at 16 kHz mono 16-bit.

Nothing is downloaded: the voice is Debian's espeak-ng (apt-get install -y espeak-ng; made with
1.51+dfsg-10+deb12u2, voice en-us, 165 words per minute). espeak-ng writes 22050 Hz; we trim the
trailing silence to TAIL_SECONDS, resample to 16 kHz with soxr (librosa, res_type="soxr_hq") and
scale the peak to PEAK. Speech is what the upsampling quality figures are judged on: it has
harmonics, noise-like consonants and silences, unlike the synthetic clips.

    python scripts/make_speech_audio.py [--out data/speech.wav]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

import librosa
import numpy as np
import soundfile

TEXT = "Upsampling doubles the sample rate. Listen for the images."
VOICE, WORDS_PER_MINUTE = "en-us", 165
SAMPLE_RATE = 16000
PEAK = 0.9
TAIL_SECONDS = 0.1  # silence kept after the last sound


def speak(text: str) -> tuple[np.ndarray, int]:
    """espeak-ng's rendering of `text` as float samples and its sample rate."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("error: espeak-ng not found; install it with apt-get install -y espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-w", str(wav),
                        text], check=True)
        samples, rate = soundfile.read(str(wav), dtype="float64")
    return samples, rate


def prepare(samples: np.ndarray, rate: int) -> np.ndarray:
    sounding = np.flatnonzero(np.abs(samples) > 1e-3)
    end = min(len(samples), sounding[-1] + int(TAIL_SECONDS * rate))
    resampled = librosa.resample(samples[:end], orig_sr=rate, target_sr=SAMPLE_RATE,
                                 res_type="soxr_hq")
    return (PEAK * resampled / np.max(np.abs(resampled))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("data/speech.wav"))
    args = parser.parse_args()
    samples = prepare(*speak(TEXT))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(args.out), samples, SAMPLE_RATE, subtype="PCM_16")
    print(f"wrote {args.out} ({len(samples) / SAMPLE_RATE:.2f} s at {SAMPLE_RATE} Hz): {TEXT!r}")


if __name__ == "__main__":
    main()
