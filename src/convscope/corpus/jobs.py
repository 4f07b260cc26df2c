"""What one Hydra job does with its config: a single file, or every file of a corpus."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

from convscope.audio.segment import resolve_path
from convscope.board.export import export_tree
from convscope.config.schema import RunConfig
from convscope.corpus.run import is_corpus, run_corpus
from convscope.pipeline.single import run
from convscope.report.page import RunCommand


def run_job(cfg: RunConfig, out_dir: Path, user_dir: Path,
            command: Optional[RunCommand] = None) -> None:
    """A folder or glob in data.path runs each file into its own subfolder; else one run."""
    cfg = with_absolute_weights(cfg, user_dir)
    if is_corpus(cfg.data.path, user_dir):
        run_corpus(cfg, out_dir, user_dir, command)
    else:
        run(cfg, out_dir, base_dir=user_dir, command=command)
    if cfg.tensorboard:  # from the finished files, so a corpus's come out as a single run's do
        export_tree(out_dir)


def with_absolute_weights(cfg: RunConfig, user_dir: Path) -> RunConfig:
    """A config stack's model.weights relative to where the user ran (as data.path is), before
    any job or corpus worker reads it; a user's module resolves its own (stack.user_module)."""
    if cfg.model.weights is None or cfg.model.target is not None:
        return cfg
    path = resolve_path(cfg.model.weights, user_dir, "model.weights")
    return replace(cfg, model=replace(cfg.model, weights=str(path)))
