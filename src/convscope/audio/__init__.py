"""Audio in and out: segments of files (read, resample, mix) and WAV writers."""
