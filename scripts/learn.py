"""Fit the stack's weights so an output channel matches soxr's resampling of the same audio.

    python scripts/learn.py                                 # reference example, spoken clip
    python scripts/learn.py model=hifigan_style learn.steps=1500
    python scripts/learn.py data=sample evaluate.channel=2 learn.spectral_weight=0

Writes the usual run outputs for the learned stack, plus metrics.json ({"before", "after"}),
plots/loss.png, plots/kernels.png and the learned weights.pt.
"""

from convscope.commands import learn_command

if __name__ == "__main__":
    learn_command()
