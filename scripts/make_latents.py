"""Write stand-in codec latents, [C, T] float32 frames as a codec's encoder (or a language model
over its tokens) hands them to the decoder, for docs/checkpoints.md's precomputed-input command.

    python scripts/make_latents.py latents.npy --channels 8 --frames 75
"""

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help=".npy file to write")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--frames", type=int, default=75)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    latents = np.random.default_rng(args.seed).standard_normal((args.channels, args.frames))
    np.save(args.out, latents.astype(np.float32))
    print(f"wrote {args.out}: {args.channels} channels x {args.frames} frames")


if __name__ == "__main__":
    main()
