"""The pipeline for long segments: the same outputs as the one-shot run, in bounded memory.

The input is read, resampled and mixed block by block (blockio), pushed through the stack block by
block with exact context (streaming), and every layer's samples are handed once, in order, to
bounded consumers: WAV writers, min/max envelopes for the feature-map plots, and one window of
input and output for the spectrogram. shapes.json reports the full shapes, as for short runs.

With `stream.mode=stateful` the stack runs instead as stack.stateful's cells, fed chunks of
`stream.block_seconds` of input (any size) with no recomputation; the consumers are the same, and
the per-chunk cost and the latency are logged and saved under shapes.json["stream"].

WAVs are float by default (`stream.subtype`): a PCM file needs one gain for the whole signal,
which is only known at the end. The subtype and the gain (1.0) are logged and saved.
"""

from __future__ import annotations

import logging
import math
from contextlib import ExitStack, closing
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from convscope.audio.background import read_ahead
from convscope.audio.blockio import SegmentSpan, WavWriters, audio_blocks, segment_span
from convscope.audio.features import FeatureInput
from convscope.audio.segment import (
    _check_segment,
    check_audio_file,
    file_duration,
    read_header,
    resolve_path,
)
from convscope.audio.wav import write_wav
from convscope.config.schema import RunConfig
from convscope.pipeline.consumers import Consumers, FeatureConsumers
from convscope.pipeline.results import RunContext, StreamedRun
from convscope.pipeline.stages import PreparedStack, finish_run, prepare_stack
from convscope.plots.streamed_model import StreamedModelFigures
from convscope.rundir import RunDir
from convscope.stack.backends import safe_kernels
from convscope.stack.describe import describe
from convscope.stack.module_cells import stream_module_stateful
from convscope.stack.user_calls import users_code, users_iteration
from convscope.stack.overlap import context_of, overlap_blocks
from convscope.stack.plan import LayerPlan
from convscope.stack.stateful import ChunkStats, StatefulStack, stream_stateful
from convscope.stack.streaming import OutputSink, layer_rules, stream_forward
from convscope.stack.rates import integer_rate, rate_json, rate_text
from convscope.stack.trace import check_finite, torch_threads
from convscope.stack.transfer import HostHandoff, to_device_ahead

log = logging.getLogger("convscope")
READ_BLOCK_SECONDS = 10.0
HOST = torch.device("cpu")


def readable_span(cfg: RunConfig, base_dir: Path) -> Optional[SegmentSpan]:
    """Where the segment lies in its file; None: not a file soundfile reads block by block (the
    one-shot loader words the error or decodes it with librosa)."""
    path = resolve_path(cfg.data.path, base_dir)
    check_audio_file(path)  # a FIFO, a loop, a name too long: worded before anything opens it
    header = read_header(path)
    if header is None:  # the one-shot loader words the error, or decodes it with librosa
        return None
    duration = file_duration(path, header)
    end = duration if cfg.data.end is None else cfg.data.end
    _check_segment(path, cfg.data.start, end, duration)
    return segment_span(path, cfg.data, end, header)


def run_streamed(ctx: RunContext, cfg: RunConfig, span: SegmentSpan, plans: list[LayerPlan],
                 stack: torch.nn.Sequential) -> StreamedRun:
    """A config stack (built from `plans`, its weights in) streamed as `ctx` decided: blocks of
    ctx.block_samples output samples (bounded by memory), or stateful chunks."""
    device = ctx.device
    prepared, stack, block_seconds, block_length = _prepared(ctx, cfg, span, plans, stack)
    consumers = Consumers(cfg, ctx.out_dir, span, plans, prepared.output_rate,
                          ctx.spectrogram, ctx.evaluate)
    stateful = ctx.engine == "stateful"
    if stateful:  # chunks of input samples, any size: they need not line up with the strides
        engine = StatefulStack(plans, stack)  # before any file is opened: a refusal writes none
        frames = max(1, round(block_seconds * span.file_rate))  # file frames
        # no more than the bounded output block needs: one frame where a stride is huge
        block_length = min(frames, max(1, block_length * span.frames
                                       // max(1, plans[-1].output_shape[-1])))
    with consumers, torch_threads(cfg.stream.threads), safe_kernels(stack):
        if stateful:
            chunks = consumers.tap_input(audio_blocks(span, block_length), device)
            stats = stream_stateful(engine, chunks, consumers.on_output)
        else:
            reader = audio_blocks(span, _read_block_frames(span))
            if cfg.stream.background_io:
                reader = read_ahead(reader)
            with closing(reader):  # on failure too: the read-ahead thread stops, the file closes
                forward_blocks(plans, stack, consumers.tap_input(reader, HOST), block_length,
                               consumers.on_output, device, all_layers=cfg.plots.enabled)
    if stateful:
        n_blocks = stats.chunks
        log.info("output: shape %s at %g Hz, %d chunks of %d file frames each",
                 prepared.rows[-1].output_shape, prepared.exact_rate, n_blocks, block_length)
        mode_info = stateful_summary(stats, prepared)
    else:
        n_blocks = math.ceil(plans[-1].output_shape[-1] / block_length)
        log.info("output: shape %s at %g Hz, %d blocks of %d samples",
                 prepared.rows[-1].output_shape, prepared.exact_rate, n_blocks, block_length)
        mode_info = {}
    audio_info = consumers.audio_info()
    if cfg.plots.enabled:
        consumers.write_plots()
    if prepared.evaluation is not None:
        consumers.evaluate(prepared.evaluation, ctx.out_dir)
    window = consumers.windows[0]  # what the spectrogram and the metrics saw (the report says so)
    stream_info = {"mode": cfg.stream.mode, "block_seconds": block_seconds,
                   "block_samples": block_length, "blocks": n_blocks, "device": str(device),
                   "window_seconds": [window.first / span.sample_rate,
                                      window.stop / span.sample_rate],
                   **mode_info}
    shapes = finish_run(cfg, ctx.out_dir, span, prepared, audio_info, ctx.command,
                        extra={"stream": stream_info, **ctx.decisions()},
                        weights_of=ctx.weights_of)
    return StreamedRun(ctx.out_dir, span, prepared.rows, prepared.output_rate, shapes)


def forward_blocks(plans: list[LayerPlan], stack: torch.nn.Module,
                   host_blocks: Iterator[torch.Tensor], block_length: int, on_output: OutputSink,
                   device: torch.device, all_layers: bool) -> None:
    """stream_forward over input blocks in host memory, `block_length` output samples a block.
    On CUDA: pinned, overlapped copies both ways (stack.transfer), the sink one block late;
    `all_layers`: the sink wants every layer's samples (plots), not only the last's."""
    rules = layer_rules(plans, stack)
    if device.type == "cuda":
        sink = HostHandoff(on_output, len(plans) - 1, device, all_layers=all_layers)
        stream_forward(rules, to_device_ahead(host_blocks, device), block_length, sink)
        sink.finish()
    else:
        stream_forward(rules, (block.to(device) for block in host_blocks), block_length,
                       on_output)


def stateful_summary(stats: ChunkStats, prepared: PreparedStack) -> dict:
    """Log and return what the chunks cost (time per chunk, state held, peak memory) and the
    latency: receptive's lookahead, the input a non-causal output waits for."""
    lookahead = prepared.rows[-1].lookahead if prepared.rows else None
    latency_ms = (None if lookahead is None
                  else float(Fraction(lookahead) / prepared.input_rate * 1000))
    peak = _max_rss_bytes()
    log.info("stateful: %d chunks, %.3f ms mean, %.3f ms max per chunk (flush included); state "
             "held at most %.1f kB; peak process memory %s; latency %s input samples (%s ms, "
             "the stack's lookahead), output lagged the input by at most %d samples at chunk ends",
             stats.chunks, stats.mean_ms, stats.max_ms, stats.max_state_bytes / 1e3,
             "unknown" if peak is None else f"{peak / 1e6:.1f} MB",
             "unknown" if lookahead is None else lookahead,
             "unknown" if latency_ms is None else f"{latency_ms:.3f}", stats.max_lag_samples)
    return {"chunk_ms_mean": stats.mean_ms, "chunk_ms_max": stats.max_ms,
            "state_bytes_max": stats.max_state_bytes, "peak_rss_bytes": peak,
            "latency_samples": lookahead, "latency_ms": latency_ms,
            "lag_samples_max": stats.max_lag_samples}


def _max_rss_bytes() -> Optional[int]:
    """The process's peak resident memory (getrusage; kB on Linux); None where unknown."""
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _read_block_frames(span: SegmentSpan) -> int:
    return max(1, int(READ_BLOCK_SECONDS * span.file_rate))


def run_model_streamed(ctx: RunContext, cfg: RunConfig, module: torch.nn.Module,
                       x: torch.Tensor) -> StreamedRun:
    """Any nn.Module, streamed: overlap blocks with exactly the context its analysis gives
    (stack.overlap), or its stateful cells (stack.module_cells) with stream.mode=stateful. The
    output WAVs are written block by block as they come (float, gain 1: stream.subtype); the
    rows (shapes.json's layers) describe the model on the example its analysis traced."""
    label, shape = ctx.model_label, list(x.shape)
    with users_code(ctx.model_key, label, shape):
        context = context_of(module, x)
        example = x[..., :context.example_samples]
        rows = describe(module, example, sample_rate=ctx.input_rate).rows
    exact = ctx.input_rate * context.rate
    wav_rate = integer_rate(exact)
    block = context.input_block(max(1, round(cfg.stream.block_seconds * exact)))
    if ctx.engine == "stateful":
        step = max(1, round(cfg.stream.block_seconds * ctx.input_rate))
        outputs = stream_module_stateful(module, (x[..., i: i + step] for i in
                                                  range(0, x.shape[-1], step)), example)
    else:
        outputs = (y for _, y in overlap_blocks(module, x, context, block))
    outputs = users_iteration(outputs, ctx.model_key, label, shape)  # each block's forward
    files = RunDir(ctx.out_dir)
    audio = ctx.source.target if isinstance(ctx.source, FeatureInput) else ctx.source
    written, channels, total, peak = [], None, 0, 0.0
    figures = StreamedModelFigures(cfg.plots, files, ctx.source, ctx.input_rate,
                                   int(x.shape[-1] * context.rate), exact, ctx.spectrogram) \
        if cfg.plots.enabled else None
    with ExitStack() as open_files, torch_threads(cfg.stream.threads):
        writers = None
        for y in outputs:
            check_finite(y.reshape(1, -1, y.shape[-1]), ctx.model_label, type(module).__name__,
                         total)
            block_out = y.detach().to("cpu", torch.float32)[0].reshape(-1, y.shape[-1]).numpy()
            if writers is None and cfg.audio.enabled and wav_rate is not None:
                channels = block_out.shape[0]
                paths = [files.channel_wav(rows[-1].index, k) for k in range(channels)]
                writers = open_files.enter_context(WavWriters(
                    paths, wav_rate, cfg.stream.subtype, int(x.shape[-1] * context.rate)))
                written += paths
            if writers is not None:
                writers.write(block_out)
            if figures is not None:
                figures.add(total, block_out)
            channels = block_out.shape[0]
            total += block_out.shape[-1]
            peak = max(peak, float(np.max(np.abs(block_out), initial=0.0)))
    if cfg.audio.enabled and audio is not None:
        write_wav(files.input_wav, audio.samples, audio.sample_rate, cfg.stream.subtype)
        written.insert(0, files.input_wav)
    if figures is not None:  # the model's input and output (its layers' are never whole)
        figures.submit(rows[-1].index, rows[-1].type, ctx.model_label)
    log.info("output: [1, %d, %d] at %s Hz, %s", channels, total, rate_text(exact),
             f"blocks of {block} input samples, context {context.left} before and "
             f"{context.right} after, alignment {context.alignment}"
             if ctx.engine != "stateful" else "stateful cells")
    audio_info = {"gain": 1.0, "subtype": cfg.stream.subtype, "output_peak": peak,
                  "files": [files.relative(path) for path in written]}
    if wav_rate is None:
        audio_info["output_wavs"] = f"output rate {exact} Hz is not an integer; no WAV written"
    prepared = PreparedStack(plans=[], exact_rate=exact, output_rate=wav_rate, evaluation=None,
                             stack=module, rows=rows, input_rate=ctx.input_rate)
    output = {"shape": [1, channels, total], **rate_json(exact)}
    stream_info = {"mode": cfg.stream.mode, "block_input_samples": block,
                   **context.as_json(), "layers_example_shape": list(example.shape)}
    shapes = finish_run(cfg, ctx.out_dir, ctx.source, prepared, audio_info, ctx.command,
                        extra={"stream": stream_info, **ctx.decisions(), "output": output,
                               **({"model": ctx.model_info} if ctx.model_info else {})},
                        weights_of=ctx.weights_of)
    return StreamedRun(ctx.out_dir, ctx.source, rows, wav_rate, shapes)


def run_streamed_features(ctx: RunContext, cfg: RunConfig, source: FeatureInput,
                          plans: list[LayerPlan], stack: torch.nn.Sequential) -> StreamedRun:
    """A config stack over a feature input's frames, streamed in blocks of ctx.block_samples
    output samples (pipeline.preflight bounds them by memory)."""
    device = ctx.device
    prepared, stack, block_seconds, block_length = _prepared(ctx, cfg, source, plans, stack)
    consumers = FeatureConsumers(cfg, ctx.out_dir, source, plans, prepared.output_rate,
                                 ctx.spectrogram, ctx.evaluate)
    frames = torch.from_numpy(source.samples)[None]
    # input blocks of about one output block's frames: on CUDA each crosses the bus one ahead
    step = max(1, math.ceil(block_length * source.length / max(1, plans[-1].output_shape[-1])))
    blocks = (frames[..., i: i + step] for i in range(0, source.length, step))
    with consumers, torch_threads(cfg.stream.threads), safe_kernels(stack):
        forward_blocks(plans, stack, blocks, block_length, consumers.on_output, device,
                       all_layers=cfg.plots.enabled)
    n_blocks = math.ceil(plans[-1].output_shape[-1] / block_length)
    log.info("output: shape %s at %g Hz, %d blocks of %d samples",
             prepared.rows[-1].output_shape, prepared.exact_rate, n_blocks, block_length)
    audio_info = consumers.audio_info()
    if cfg.plots.enabled:
        consumers.write_plots()
    window, rate = consumers.windows[1], consumers.rates[-1]
    stream_info = {"mode": cfg.stream.mode, "block_seconds": block_seconds,
                   "block_samples": block_length, "blocks": n_blocks, "device": str(device),
                   "input_frames_per_block": step,
                   "window_seconds": [float(window.first / rate), float(window.stop / rate)]}
    shapes = finish_run(cfg, ctx.out_dir, source, prepared, audio_info, ctx.command,
                        extra={"stream": stream_info, **ctx.decisions()},
                        weights_of=ctx.weights_of)
    return StreamedRun(ctx.out_dir, source, prepared.rows, prepared.output_rate, shapes)


def _prepared(ctx: RunContext, cfg: RunConfig, source, plans: list[LayerPlan],
              stack: torch.nn.Sequential) -> tuple[PreparedStack, torch.nn.Sequential, float, int]:
    """The prepared stack on the decided device, the block's seconds and its output samples
    (the decided ones, or stream.block_seconds of output)."""
    prepared = prepare_stack(cfg, source, plans, stack, ctx.model_label, ctx.device, ctx.evaluate)
    block_seconds = ctx.block_seconds or cfg.stream.block_seconds
    block_length = ctx.block_samples or max(1, round(block_seconds * prepared.exact_rate))
    return prepared, prepared.stack.to(ctx.device).eval(), block_seconds, block_length
