"""Folders and globs of audio: one run dir per file (run), listed (scan, walk), on every core
(workers); jobs.run_job: what one Hydra job does, a corpus or a single file."""
