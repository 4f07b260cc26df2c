"""Static HTML pages rendered from what is on disk. Never imports torch."""
