"""Writes the two inputs README's "bring your checkpoint and your frames" command reads:

- sample_log_mel.npy: hifigan_v1's log mel (22050 Hz, n_fft 1024, hop 256, 80 bands to 8 kHz)
  of data/sample.wav from 2.0 to 2.1 s, computed by convscope: [80, 8] float32, as a TTS model
  would hand a vocoder its frames;
- tiny_vocoder_checkpoint.pt: TinyVocoder(channels=16) with seeded random weights, saved as
  training code saves a checkpoint, {'generator': state_dict, 'steps': ...}.

    python examples/make_checkpoint_inputs.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from convscope.audio.features import compute_features
from convscope.audio.segment import load_segment
from convscope.config.schema import DataConfig
from convscope.resources import bundled

HERE = Path(__file__).resolve().parent


def main() -> None:
    data = DataConfig(path=bundled("sample.wav"), features="log_mel", sr=22050, n_fft=1024,
                      hop_length=256, win_length=1024, n_mels=80, fmax=8000.0, start=2.0,
                      end=2.1)
    np.save(HERE / "sample_log_mel.npy", compute_features(load_segment(data, HERE), data).samples)
    sys.path.insert(0, str(HERE))
    from tiny_vocoder import TinyVocoder  # this folder's example generator

    torch.manual_seed(1234)
    generator = TinyVocoder(channels=16)
    torch.save({"generator": generator.state_dict(), "steps": 2500},
               HERE / "tiny_vocoder_checkpoint.pt")


if __name__ == "__main__":
    main()
