"""convscope: see what Conv1d and ConvTranspose1d do to real audio."""

__version__ = "0.1.0"
