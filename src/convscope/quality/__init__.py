"""Metrics, the comparison with a real resampler, fitting and kernel views. Pure: no file writes."""
