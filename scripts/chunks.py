"""Why does my real-time decoder click? Run the stack the way naive real-time code does: chunks of
the input, each through the whole stack on its own with no context, outputs concatenated; compare
with the one-shot forward and name the layer whose context was too short.

    python scripts/chunks.py                                  # the seed example, 0.1 s chunks
    python scripts/chunks.py chunks.seconds=0.02
    python scripts/chunks.py model=hifigan_v1 data=speech data.features=log_mel data.end=3
"""

from convscope.commands import chunks_command

if __name__ == "__main__":
    chunks_command()
