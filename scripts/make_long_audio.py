"""Write a long synthetic WAV block by block, for streaming tests and benchmarks (not committed).

    python scripts/make_long_audio.py --seconds 3600 --out /tmp/convscope_1h.wav

A slowly gliding tone with harmonics plus a little seeded noise, PCM_16 mono at --sr (16 kHz by
default), generated in 60 s blocks so an hour needs no more memory than a minute.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile

BLOCK_SECONDS = 60


def block(first: int, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = (first + np.arange(n)) / sr
    freq = 220.0 * 2 ** (np.sin(2 * np.pi * t / 97.0))  # glides over an octave up and down
    phase = 2 * np.pi * np.cumsum(freq) / sr + 2 * np.pi * 220.0 * first / sr
    tone = sum(np.sin(k * phase) / k for k in range(1, 6))
    return (0.3 * tone + 0.02 * rng.standard_normal(n)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--sr", type=int, default=16000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    total = int(round(args.seconds * args.sr))
    rng = np.random.default_rng(0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with soundfile.SoundFile(str(args.out), "w", args.sr, 1, "PCM_16", format="WAV") as f:
        for first in range(0, total, BLOCK_SECONDS * args.sr):
            f.write(block(first, min(BLOCK_SECONDS * args.sr, total - first), args.sr, rng))
    print(f"wrote {args.out}: {args.seconds:g} s at {args.sr} Hz ({total} samples)")


if __name__ == "__main__":
    main()
