"""scripts/chunks.py's job (convscope-chunks): the report logged, chunks.json and
plots/chunk_errors.png in the run dir, for a config stack or the user's own module
(model=module model.target=...)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from convscope.board.export import export_tree
from convscope.chunk_debugger.debug import debug_chunks
from convscope.chunk_debugger.figure import write_chunk_plot
from convscope.chunk_debugger.findings import ChunkReport, chunk_length
from convscope.chunk_debugger.model import debug_model
from convscope.chunk_debugger.report import report_text
from convscope.config.schema import ChunksConfig, RunConfig
from convscope.files import write_json
from convscope.pipeline.single import stack_input
from convscope.rundir import RunDir
from convscope.stack.rates import exact_rate
from convscope.stack.trace import pick_device
from convscope.stack.user_calls import users_code
from convscope.stack.user_module import load_user_module

log = logging.getLogger("convscope")


def run_chunk_debugger(cfg: RunConfig, chunks: ChunksConfig, out_dir: Path,
                       base_dir: Path) -> ChunkReport:
    """The debugger on the run's input: the report logged, chunks.json and the plot written."""
    report = (debug_user_module(cfg, chunks, base_dir) if cfg.model.target is not None
              else debug_chunks(cfg, chunks, base_dir))
    files = RunDir(out_dir)
    name = cfg.model.target or cfg.model.name  # model=module: the user's class, not "module"
    log.info("%s", report_text(report, name))
    write_json(files.chunks_json, report.as_json())
    written = [files.chunks_json]
    if cfg.plots.enabled:
        titled = name.rsplit(":", 1)[-1].rsplit("/", 1)[-1]  # a path is too long for a title
        written.append(write_chunk_plot(report, files.chunk_errors_plot, titled,
                                        chunks.plot_boundaries, chunks.plot_window_ms,
                                        cfg.plots.dpi, cfg.plots.width_inches))
    log.info("wrote %s", ", ".join(str(path) for path in written))
    if cfg.tensorboard:  # the chunk errors figure, as a run's figures (pipeline/jobs.py)
        export_tree(out_dir)
    return report


def debug_user_module(cfg: RunConfig, chunks: ChunksConfig, base_dir: Path) -> ChunkReport:
    """model=module: the user's module on the input a run would give it (its segment or
    frames), chunks.seconds long chunks."""
    source = stack_input(cfg, base_dir)
    input_rate = exact_rate(source.sample_rate, "data.sr")
    samples = chunk_length(chunks.seconds, input_rate)
    device = pick_device(cfg.device)
    model = load_user_module(cfg.model, base_dir, cfg.seed).to(device)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    x = torch.as_tensor(source.samples[None], dtype=dtype, device=device)
    log.info("chunk debugger: %s on %s, shape %s at %s Hz", cfg.model.target, source.path,
             list(x.shape), float(input_rate))
    with users_code("model.target", cfg.model.target, list(x.shape)):
        return debug_model(model, x, samples, input_rate, chunks.tolerance)
