"""Value checks that types alone can't express; each error names its key.

The checks only raise: they read a config and change nothing. Spellings that mean the same value
are made one beforehand (convscope.config.convert.normalise).
"""

from __future__ import annotations

import importlib.util
import math
import os

from convscope.config.bounds import INT64_MAX, in_range
from convscope.config.model_checks import check_model
from convscope.config.schema import (
    DEVICES,
    EVALUATE_MODES,
    FEATURES,
    LOG_BASES,
    MEL_SCALES,
    PAD_MODES,
    REFERENCE_RESAMPLERS,
    STREAM_ENGINES,
    STREAM_MODES,
    ChunksConfig,
    CorpusConfig,
    DataConfig,
    EvaluateConfig,
    LearnConfig,
    LimitsConfig,
    PlotsConfig,
    RunConfig,
    StreamConfig,
)
from convscope.errors import ConvscopeError

MAX_SAMPLE_RATE = 2**31 - 1  # libsndfile's samplerate is a C int
MAX_FFT = 2**20  # samples in one STFT frame or hop: ~22 s at 48 kHz
MAX_EDGE_MS = 3_600_000.0
MAX_WINDOW_MS = 1000.0  # a spectrogram or plot window longer than a second shows nothing more
MAX_PANELS = 256
# A figure side in pixels: 32768 x 32768 RGBA is 4 GB before matplotlib draws a line
MAX_FIGURE_PIXELS = 2**15
MAX_ZOOM_SAMPLES = 400
TENSORBOARD_INSTALL = "pip install 'convscope[tensorboard]'"


def check_values(cfg: RunConfig) -> None:
    """Value checks that types alone can't express; each error names its key."""
    data = cfg.data
    if data.sr <= 0:
        raise ConvscopeError(f"data.sr must be a positive sample rate, got {data.sr}")
    in_range("data.sr", data.sr, 1, MAX_SAMPLE_RATE, what=" Hz (a WAV header's sample rate)")
    if not math.isfinite(data.start) or data.start < 0:
        raise ConvscopeError(f"data.start must be >= 0 seconds, got {data.start}")
    if data.end is not None:
        if not math.isfinite(data.end):
            raise ConvscopeError(f"data.end must be a finite number of seconds or null, got {data.end}")
        if data.end <= data.start:
            raise ConvscopeError(
                f"data.end must be greater than data.start, got start={data.start} end={data.end}")
    if data.num_shards < 1 or not 0 <= data.shard < data.num_shards:
        raise ConvscopeError(f"data.shard must satisfy 0 <= data.shard < data.num_shards, got "
                             f"shard={data.shard} num_shards={data.num_shards}")
    check_model(cfg.model)
    _check_features(data)
    if cfg.device not in DEVICES:
        raise ConvscopeError(f"device must be one of {', '.join(DEVICES)}, got {cfg.device!r}")
    if not 0 < cfg.audio.peak <= 1:
        raise ConvscopeError(f"audio.peak must be in (0, 1], got {cfg.audio.peak}")
    _check_subtype(cfg.audio.subtype)
    _check_stream(cfg.stream)
    _check_evaluate(cfg.evaluate)
    _check_limits(cfg.limits)
    _check_plots(cfg.plots)
    _check_corpus(cfg.corpus)
    in_range("seed", cfg.seed, 0, INT64_MAX, what=" (torch and numpy seeds)")
    _check_zoom(cfg.plots)
    if cfg.tensorboard:  # refused before any work, not after an hour of it
        require_tensorboard()


def require_tensorboard() -> None:
    """The optional tensorboard package (its protos and event framing) is importable."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ConvscopeError(f"TensorBoard events (tensorboard=true) need the tensorboard package: "
                             f"{TENSORBOARD_INSTALL}")


MAX_FIGURE_WORKERS = 8  # more figures than that at once: a corpus, which has workers of its own


def _check_zoom(plots: PlotsConfig) -> None:
    """A zoom panel draws every sample as a stem: a few hundred at most stay readable."""
    if not 0 <= plots.zoom_samples <= MAX_ZOOM_SAMPLES:
        raise ConvscopeError(f"plots.zoom_samples must be in [0, {MAX_ZOOM_SAMPLES}] (0: no zoom "
                             f"panel), got {plots.zoom_samples}")
    if not 0 <= plots.workers <= MAX_FIGURE_WORKERS:
        raise ConvscopeError(f"plots.workers must be in [0, {MAX_FIGURE_WORKERS}] (0: figures "
                             f"drawn in the run's own process), got {plots.workers}")
    start = plots.zoom_start
    if start is not None and not (math.isfinite(start) and start >= 0):
        raise ConvscopeError(f"plots.zoom_start must be null (the loudest input sample) or "
                             f"seconds >= 0 from the segment start, got {start}")


def _check_features(data: DataConfig) -> None:
    """The feature frontend's settings (convscope.audio.features). The STFT keys are checked
    for a waveform input too: a typo there should not wait until someone switches features on."""
    if data.features not in FEATURES:
        raise ConvscopeError(
            f"data.features must be one of {', '.join(FEATURES)}, got {data.features!r}")
    for key in ("n_fft", "hop_length", "n_mels"):
        if getattr(data, key) < 1:
            raise ConvscopeError(f"data.{key} must be >= 1, got {getattr(data, key)}")
        in_range(f"data.{key}", getattr(data, key), 1, MAX_FFT, what=" samples")
    if data.win_length is not None and not 1 <= data.win_length <= data.n_fft:
        raise ConvscopeError(f"data.win_length must be in [1, data.n_fft={data.n_fft}] or null "
                             f"(null: n_fft), got {data.win_length}")
    bins = data.n_fft // 2 + 1
    if data.features in ("mel", "log_mel") and data.n_mels > bins:
        raise ConvscopeError(f"data.n_mels must be <= data.n_fft // 2 + 1 = {bins} (the STFT bins "
                             f"of n_fft={data.n_fft}), got n_mels={data.n_mels}")
    nyquist = data.sr / 2
    if not math.isfinite(data.fmin) or data.fmin < 0:
        raise ConvscopeError(f"data.fmin must be >= 0 Hz, got {data.fmin}")
    if data.fmax is not None and not data.fmin < data.fmax <= nyquist:
        raise ConvscopeError(f"data.fmax must be in (data.fmin, data.sr / 2] = ({data.fmin:g}, "
                             f"{nyquist:g}] Hz or null (null: sr / 2), got {data.fmax}")
    if data.fmax is None and data.fmin >= nyquist:
        raise ConvscopeError(f"data.fmin must be below data.sr / 2 = {nyquist:g} Hz (fmax is "
                             f"null: sr / 2), got {data.fmin}")
    _check_mel_details(data)
    if data.frame_rate is not None and data.features != "precomputed":
        raise ConvscopeError(f"data.frame_rate is only read with data.features=precomputed (frames "
                             f"from a file); data.features={data.features} comes at data.sr / "
                             "data.hop_length")
    if data.features == "precomputed":  # frames read from a file: no segment, no framing
        return
    if data.features != "waveform" and not data.center and data.end is not None:
        samples = math.floor((data.end - data.start) * data.sr)
        if samples < data.hop_length:
            raise ConvscopeError(
                f"data.hop_length: the segment {data.start}-{data.end} s holds about {samples} "
                f"samples at {data.sr} Hz, less than one frame of hop_length={data.hop_length}")


def _check_mel_details(data: DataConfig) -> None:
    """The frontend keys beyond the STFT's (configs/frontend/*.yaml set them together)."""
    for key, value, allowed in (("mel_scale", data.mel_scale, MEL_SCALES),
                                ("mel_norm", data.mel_norm, ("slaney", None)),
                                ("log_base", data.log_base, LOG_BASES),
                                ("pad_mode", data.pad_mode, (*PAD_MODES, None))):
        if value not in allowed:
            shown = ", ".join("null" if a is None else a for a in allowed)
            raise ConvscopeError(f"data.{key} must be one of {shown}, got {value!r}")
    if not data.power_floor >= 0:
        raise ConvscopeError(f"data.power_floor must be >= 0 (added to |X|^2 under the square "
                             f"root), got {data.power_floor}")
    if not data.log_floor > 0:
        raise ConvscopeError(f"data.log_floor must be > 0 (log_mel takes log(max(mel, "
                             f"log_floor))), got {data.log_floor}")


def _check_stream(stream: StreamConfig) -> None:
    if stream.enabled not in STREAM_MODES:
        raise ConvscopeError(
            f"stream.enabled must be one of {', '.join(STREAM_MODES)}, got {stream.enabled!r}")
    for name in ("block_seconds", "auto_seconds"):
        value = getattr(stream, name)
        if not math.isfinite(value) or value <= 0:
            raise ConvscopeError(f"stream.{name} must be a positive number of seconds, got {value}")
    _check_subtype(stream.subtype, "stream.subtype")
    if stream.mode not in STREAM_ENGINES:
        raise ConvscopeError(
            f"stream.mode must be one of {', '.join(STREAM_ENGINES)}, got {stream.mode!r}")
    if stream.threads < 0:
        raise ConvscopeError(f"stream.threads must be >= 0 (0: torch's default), got {stream.threads}")
    cores = usable_cores()
    in_range("stream.threads", stream.threads, 0, cores,
             what=f" (0: torch's default; more threads than the {cores} usable cores only "
                  "wait on each other)")


def _check_evaluate(evaluate: EvaluateConfig) -> None:
    if evaluate.enabled not in EVALUATE_MODES:
        raise ConvscopeError(f"evaluate.enabled must be one of {', '.join(EVALUATE_MODES)}, got "
                             f"{evaluate.enabled!r}")
    if evaluate.channel < 0:
        raise ConvscopeError(f"evaluate.channel must be >= 0, got {evaluate.channel}")
    if evaluate.reference not in REFERENCE_RESAMPLERS:
        raise ConvscopeError(f"evaluate.reference must be one of "
                             f"{', '.join(REFERENCE_RESAMPLERS)}, got {evaluate.reference!r}")
    if not math.isfinite(evaluate.edge_ms) or evaluate.edge_ms < 0:
        raise ConvscopeError(f"evaluate.edge_ms must be >= 0, got {evaluate.edge_ms}")
    in_range("evaluate.edge_ms", evaluate.edge_ms, 0, MAX_EDGE_MS, what=" ms (an hour)")


LIMIT_UNITS = {"memory_gb": 1e9, "one_shot_gb": 1e9, "block_mb": 1e6, "max_gmacs": 1e9,
               "max_output_gb": 1e9}


def _check_limits(limits: LimitsConfig) -> None:
    """The resource limits (convscope.pipeline.preflight): finite and positive."""
    fraction = limits.memory_fraction
    if not math.isfinite(fraction) or not 0 < fraction <= 1:
        raise ConvscopeError(f"limits.memory_fraction must be in (0, 1] (a share of the "
                             f"machine's RAM), got {fraction}")
    for key in ("memory_gb", "one_shot_gb", "block_mb", "max_gmacs", "max_output_gb"):
        value = getattr(limits, key)
        if value is None and key == "memory_gb":
            continue
        if not math.isfinite(value) or value <= 0:
            raise ConvscopeError(f"limits.{key} must be a positive finite number, got {value}")
        most = INT64_MAX / LIMIT_UNITS[key]
        if value > most:  # the budget counts bytes and MACs in 64-bit integers
            raise ConvscopeError(f"limits.{key}: {value:g} does not fit a 64-bit count of "
                                 f"{'MACs' if key == 'max_gmacs' else 'bytes'}; use at most "
                                 f"{most:.3g}")


MAX_WORKERS = 4096  # processes: beyond any machine's cores, and a typo's 10**9 is refused


def _check_corpus(corpus: CorpusConfig) -> None:
    """corpus.workers: 0 (every core) or a count, capped later at the shard's files;
    corpus.figures_files: a count of files, -1 or null (every file)."""
    in_range("corpus.workers", corpus.workers, 0, MAX_WORKERS,
             what=" processes (0: every usable core, 1: in this process)")
    if corpus.figures_files is not None:
        in_range("corpus.figures_files", corpus.figures_files, -1, None,
                 what=" files (-1 or null: every file, 0: none)")


def check_learn(learn: LearnConfig) -> None:
    if learn.steps < 1:
        raise ConvscopeError(f"learn.steps must be >= 1, got {learn.steps}")
    if not math.isfinite(learn.lr) or learn.lr <= 0:
        raise ConvscopeError(f"learn.lr must be a positive number, got {learn.lr}")
    weights = (learn.waveform_weight, learn.spectral_weight)
    if min(weights) < 0 or max(weights) <= 0:
        raise ConvscopeError(f"learn.waveform_weight and learn.spectral_weight must be >= 0 and "
                             f"not both 0, got {weights[0]} and {weights[1]}")
    if learn.spectral_weight > 0 and (not learn.fft_sizes or min(learn.fft_sizes) < 16):
        raise ConvscopeError(f"learn.fft_sizes must list sizes >= 16 when learn.spectral_weight "
                             f"> 0, got {list(learn.fft_sizes)}")
    for index, size in enumerate(learn.fft_sizes):
        in_range(f"learn.fft_sizes.{index}", size, 1, MAX_FFT, what=" samples")


def check_chunks(chunks: ChunksConfig) -> None:
    """scripts/chunks.py's section (finite values: config.bounds, checked on conversion;
    chunks.seconds against the input rate: chunk_debugger.debug.chunk_length)."""
    in_range("chunks.tolerance", chunks.tolerance, 0, 1, what=" (a fraction of the peak)")
    in_range("chunks.plot_boundaries", chunks.plot_boundaries, 0, MAX_PANELS, what=" panels")
    in_range("chunks.plot_window_ms", chunks.plot_window_ms, 0, MAX_WINDOW_MS, low_open=True,
             what=" ms")


def _check_plots(plots: PlotsConfig) -> None:
    """Figure sizes that fit in memory (each pixel is 4 bytes of RGBA) and windows that fit a
    spectrogram; the streamed spectrogram's window is checked against the segment
    where its length is known (pipeline.streamed)."""
    in_range("plots.dpi", plots.dpi, 10, 1200, what=" dots per inch")
    in_range("plots.width_inches", plots.width_inches, 1, 200, what=" inches")
    if plots.width_inches * plots.dpi >= MAX_FIGURE_PIXELS:
        raise ConvscopeError(
            f"plots.width_inches: {plots.width_inches:g} in x plots.dpi={plots.dpi} is "
            f"{plots.width_inches * plots.dpi:.0f} pixels, beyond the limit of "
            f"{MAX_FIGURE_PIXELS - 1}; lower plots.dpi or plots.width_inches")
    in_range("plots.max_channels", plots.max_channels, 1, MAX_PANELS, what=" channels drawn")
    tallest = (1.6 * (2 + plots.max_channels) + 0.6) * plots.dpi  # plots.layers.plot_layer
    if tallest >= MAX_FIGURE_PIXELS:
        raise ConvscopeError(
            f"plots.max_channels: {plots.max_channels} channels at plots.dpi={plots.dpi} make "
            f"a figure {tallest:.0f} pixels tall, beyond the limit of "
            f"{MAX_FIGURE_PIXELS - 1}; lower plots.max_channels or plots.dpi")
    if plots.max_layers < 1:
        raise ConvscopeError(f"plots.max_layers must be >= 1, got {plots.max_layers}")
    in_range("plots.window_ms", plots.window_ms, 0, MAX_WINDOW_MS, low_open=True, what=" ms")
    in_range("plots.spectrogram_start", plots.spectrogram_start, 0, None, what=" seconds")
    in_range("plots.spectrogram_seconds", plots.spectrogram_seconds, 0, None, low_open=True,
             what=" seconds")


def check_spectrogram_window(plots: PlotsConfig, seconds: float) -> None:
    """A streamed run's spectrogram stretch must start inside its segment of `seconds`."""
    if plots.enabled and plots.spectrogram and plots.spectrogram_start >= seconds:
        raise ConvscopeError(
            f"plots.spectrogram_start: {plots.spectrogram_start:g} s is past the end of the "
            f"streamed segment ({seconds:.3f} s long); give a start in [0, {seconds:.3f})")


def usable_cores() -> int:
    """CPU cores this process may run on (a SLURM or taskset mask included)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _check_subtype(subtype: str, key: str = "audio.subtype") -> None:
    import soundfile  # loads libsndfile (cffi): the config package stays import-light

    known = soundfile.available_subtypes("WAV")
    if subtype not in known:
        raise ConvscopeError(
            f"{key} must be a WAV subtype ({', '.join(sorted(known))}), got {subtype!r}")
