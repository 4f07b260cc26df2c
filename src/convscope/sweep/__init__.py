"""Multiruns: the summary of every job, its figure and index page, Hydra's callback."""
