"""What the original tutorial's script does, written plainly: the baseline scripts/bench.py times.

librosa-load seconds 2-3 of a WAV at 16 kHz, run ConvTranspose1d(1,2,k=3,s=1,p=1) then
ConvTranspose1d(2,3,k=5,s=2,p=2,output_padding=1), print the shapes, save two matplotlib figures.

    python scripts/bench_tutorial_baseline.py [--wav data/sample.wav] [--out /tmp/baseline]
"""

import argparse
from pathlib import Path

import librosa
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--wav", default="data/sample.wav")
parser.add_argument("--out", type=Path, default=Path("/tmp/convscope_tutorial_baseline"))
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)

y, sr = librosa.load(args.wav, sr=16000, offset=2.0, duration=1.0)
x = torch.tensor(y).reshape(1, 1, -1)
layer1 = nn.ConvTranspose1d(1, 2, kernel_size=3, stride=1, padding=1)
layer2 = nn.ConvTranspose1d(2, 3, kernel_size=5, stride=2, padding=2, output_padding=1)
with torch.no_grad():
    h = layer1(x)
    out = layer2(h)
print("input", tuple(x.shape), "layer1", tuple(h.shape), "layer2", tuple(out.shape))
print("weights", tuple(layer1.weight.shape), tuple(layer2.weight.shape))

fig, axes = plt.subplots(3, 1, figsize=(12, 6))
axes[0].plot(y)
axes[0].set_title("input")
for channel in range(2):
    axes[channel + 1].plot(h[0, channel].numpy())
    axes[channel + 1].set_title(f"layer 1 channel {channel}")
fig.tight_layout()
fig.savefig(args.out / "layer1.png")
fig, axes = plt.subplots(3, 1, figsize=(12, 6))
for channel in range(3):
    axes[channel].plot(out[0, channel].numpy())
    axes[channel].set_title(f"layer 2 channel {channel}")
fig.tight_layout()
fig.savefig(args.out / "layer2.png")
