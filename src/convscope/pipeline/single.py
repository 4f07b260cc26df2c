"""One audio file, one run dir: streamed or one-shot, decided here and only here.

`run(cfg, out_dir)` is what scripts/run.py (through jobs.run_job), a corpus's files and the tests
call. Long segments go block by block in bounded memory, with the same results (streamed.py);
the rest in one forward pass (oneshot.py). Both share prepare_stack and finish_run (stages.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from convscope.config.schema import RunConfig
from convscope.pipeline.module_model import run_module
from convscope.pipeline.oneshot import run_one_shot
from convscope.pipeline.results import RunResult, StreamedRun
from convscope.pipeline.streamed import maybe_run_streamed
from convscope.report.page import RunCommand
from convscope.stack.trace import pick_device

log = logging.getLogger("convscope")


def run(cfg: RunConfig, out_dir: Path, base_dir: Optional[Path] = None,
        command: Optional[RunCommand] = None) -> RunResult | StreamedRun:
    out_dir = Path(out_dir)
    base_dir = base_dir or Path.cwd()
    device = pick_device(cfg.device)
    if cfg.model.target is not None:  # the user's own nn.Module: one shot, through describe
        return run_module(cfg, out_dir, base_dir, device, command)
    if goes_one_shot(cfg):
        return run_one_shot(cfg, out_dir, base_dir, device, command)
    streamed = maybe_run_streamed(cfg, out_dir, base_dir, device, command)
    if streamed is not None:
        return streamed
    return run_one_shot(cfg, out_dir, base_dir, device, command)


def goes_one_shot(cfg: RunConfig) -> bool:
    """Inputs that only the one-shot path takes, logged once with the reason: a feature input
    is computed from the whole segment (its frames at sr / hop_length are what the stack sees;
    the block reader streams waveforms only)."""
    if cfg.data.features == "waveform":
        return False
    log.info("streaming off (one-shot forward): data.features=%s frames are computed from the "
             "whole segment; the block-by-block reader streams waveforms only", cfg.data.features)
    return True
