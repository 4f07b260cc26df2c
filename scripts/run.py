"""Run the configured Conv1d/ConvTranspose1d stack on a WAV segment and save what it did.

    python scripts/run.py                                   # the reference example
    python scripts/run.py model.layers.1.stride=4 model.layers.1.output_padding=3
    python scripts/run.py data.path=my.wav data.start=0 data.end=null plots.enabled=false
    python scripts/run.py data.path=corpus/ data.start=0 data.end=null   # every file, one subfolder each
"""

from convscope.commands import run_command

if __name__ == "__main__":
    run_command()
