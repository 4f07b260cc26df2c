"""Run dirs: the names of what a run writes (layout.py) and who may write or replace one."""

from convscope.rundir.layout import RunDir, claim_new_dir

__all__ = ["RunDir", "claim_new_dir"]
