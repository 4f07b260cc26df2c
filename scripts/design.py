"""Design an exact ConvTranspose1d upsampler: every stride order and kernel, scored and ranked.

    python scripts/design.py sr=22050 hop=256              # feature frames -> audio, x256
    python scripts/design.py in_rate=16000 out_rate=48000  # waveform -> waveform, x3
    python scripts/design.py sr=48000 hop=600 rank_by=[macs,lookahead_ms] top=10
    python scripts/run.py --config-dir <its run dir> model=best data=speech

Writes candidates.csv (with each candidate's upsample_rates / upsample_kernel_sizes for HiFi-GAN's
config and whether its padding=(k - u) // 2 stays exact), best_hifigan.json, and model/best.yaml,
top2.yaml, ... (each with the init it was scored with) into the run dir (configs/design.yaml).
"""

from convscope.commands import design_command

if __name__ == "__main__":
    design_command()
