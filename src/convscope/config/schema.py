"""Typed configuration: dataclass schemas for Hydra's ConfigStore.

Hydra composes a DictConfig from configs/*.yaml and command-line overrides; the schemas below make
Hydra reject unknown keys and wrong types at compose time. `config.convert.to_run_config` turns the
result into these dataclasses and checks values (config.checks), so library code never reaches into
a DictConfig.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING

DEVICES = ("cpu", "cuda", "auto")
STREAM_MODES = ("auto", "true", "false")
STREAM_ENGINES = ("overlap", "stateful")  # stream.mode: how a streamed run computes its blocks
EVALUATE_MODES = ("auto", "true", "false")
FEATURES = ("waveform", "mel", "log_mel", "stft", "precomputed")
MEL_SCALES = ("slaney", "htk")
LOG_BASES = ("e", "10")
PAD_MODES = ("reflect", "constant", "edge")
# published checkpoint layouts a config stack can read and write (convscope.stack.layouts)
LAYOUTS = ("hifigan", "bigvgan")
EXPORT_LAYOUTS = ("convscope", "published")
REFERENCE_RESAMPLERS = ("soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "polyphase", "fft")


@dataclass
class DataConfig:
    path: str = "data/sample.wav"
    sr: int = 16000
    start: float = 2.0
    end: Optional[float] = 3.0  # None: to the end of the file
    mono: bool = True
    # A folder or glob in `path` is a corpus (convscope.corpus.run); these split its sorted file list
    shard: int = 0
    num_shards: int = 1
    # What the stack takes in: the waveform, or frames of a spectrogram of it (convscope.audio
    # .features) at sr / hop_length frames per second; the audio is kept as the alignment target
    features: str = "waveform"  # waveform | mel | log_mel | stft | precomputed
    # precomputed: data.path is a .npy/.pt of [C, T] or [1, C, T] frames (a mel from a TTS
    # model, a codec's latents) at frame_rate frames per second, exact text ("22050/256") or a
    # number; no target audio
    frame_rate: Optional[str] = None
    n_fft: int = 1024
    hop_length: int = 256
    win_length: Optional[int] = None  # None: n_fft
    n_mels: int = 80
    fmin: float = 0.0
    fmax: Optional[float] = None  # None: sr / 2
    # false: HiFi-GAN's framing, (n_fft - hop_length) / 2 reflect padding on each side, so T =
    # samples // hop_length and T x hop_length is the audio's length; true: librosa's centred
    # frames (n_fft / 2 each side), T = 1 + samples // hop_length
    center: bool = False
    # The rest of what a checkpoint's frontend fixes; configs/frontend/*.yaml set every key at
    # once (frontend=hifigan | bigvgan_24k | vocos | melgan) and name themselves here
    frontend: Optional[str] = None
    mel_scale: str = "slaney"  # slaney (librosa's: HiFi-GAN, BigVGAN) | htk (torchaudio's: Vocos)
    mel_norm: Optional[str] = "slaney"  # slaney: bands of equal area | null: peak 1 (torchaudio)
    power_floor: float = 1e-9  # magnitude sqrt(|X|^2 + power_floor): HiFi-GAN's 1e-9; 0 is |X|
    log_floor: float = 1e-5  # log_mel = log(max(mel, log_floor)): HiFi-GAN 1e-5, Vocos 1e-7
    log_base: str = "e"  # e (HiFi-GAN, BigVGAN, Vocos) | 10 (MelGAN's Audio2Mel: log10)
    # padding of the audio's ends: null is reflect for center=false (HiFi-GAN's (n_fft - hop) / 2)
    # and constant for center=true (librosa's zeros); torchaudio's centred frames reflect
    pad_mode: Optional[str] = None


@dataclass
class LayerConfig:
    """One layer of the stack. Keys left at None take torch's default for that layer type."""

    type: str = MISSING
    in_channels: Optional[int] = None  # None: the previous layer's out_channels
    out_channels: Optional[int] = None
    kernel_size: Optional[int] = None
    stride: Optional[int] = None
    padding: Any = None  # int, or "same"/"valid" for Conv1d
    output_padding: Optional[int] = None
    dilation: Optional[int] = None
    groups: Optional[int] = None
    bias: Optional[bool] = None
    padding_mode: Optional[str] = None
    negative_slope: Optional[float] = None  # LeakyReLU
    alpha: Optional[float] = None  # ELU; Snake/SnakeBeta initial alpha (default 1)
    # Conv weights: default (torch's seeded random) | linear | nearest | sinc | identity | box;
    # the kernel math and the geometry each needs are in convscope.stack.inits
    init: Optional[str] = None
    sinc_window: Optional[str] = None  # kaiser | hann | blackman | rect
    sinc_beta: Optional[float] = None  # Kaiser beta
    sinc_cutoff: Optional[float] = None  # fraction of the input Nyquist, (0, 1]
    scale_factor: Optional[int] = None  # Upsample
    mode: Optional[str] = None  # Upsample: nearest | linear | nearest-exact
    weight_norm: Optional[bool] = None  # Conv1d/ConvTranspose1d: torch's weight_norm parametrization
    # Conv1d/ConvTranspose1d: read only the past (convscope.stack.causal); None: model.causal
    causal: Optional[bool] = None
    # Blocks (convscope.stack.blocks): Sequential, Residual (x + the sub-stack) and Parallel (its
    # entries are branches on one input, reduced by `reduce`) hold their sub-stack in `layers`
    layers: Optional[List[LayerConfig]] = None
    reduce: Optional[str] = None  # Parallel: mean | sum
    activation: Optional[str] = None  # AntiAliasedActivation: Snake | SnakeBeta
    logscale: Optional[bool] = None  # Snake/SnakeBeta: alpha (and beta) stored as logarithms


@dataclass
class ModelConfig:
    name: str = "custom"
    layers: List[LayerConfig] = field(default_factory=list)
    # model=module: the user's own nn.Module class instead of `layers` (this imports and runs
    # their code); `weights` is a state_dict file loaded strictly
    target: Optional[str] = None  # package.module.Class
    kwargs: Dict[str, Any] = field(default_factory=dict)
    # a checkpoint: model=module's state_dict, or a config stack's own weights.pt, or (a preset
    # with a `layout`) the published generator's checkpoint
    weights: Optional[str] = None
    # the published code whose checkpoint names this stack reads and writes (stack.layouts):
    # hifigan | bigvgan; the presets rebuilt from published code set it
    layout: Optional[str] = None
    # weights.pt: convscope (the stack's own state_dict) | published (the layout's names, as
    # {'generator': ...}: the published code loads it)
    export_layout: str = "convscope"
    # the checkpoint entry holding the state_dict (dotted: a.b); None: the file itself, or its
    # one entry that is a state_dict ({'generator': ...})
    weights_key: Optional[str] = None
    # a JSON file read into an attribute-style dict (h.upsample_rates), passed as the first
    # argument, or as h= when the constructor names one: the published Generator(h)
    config_json: Optional[str] = None
    # the same object from the command line: model.h={upsample_rates: [8, 8, 2, 2], ...}
    # ({}: none; a mapping, not null, so that Hydra can merge the override into it)
    h: Dict[str, Any] = field(default_factory=dict)
    # Every Conv1d/ConvTranspose1d of `layers` causal unless the layer says causal: false (Hydra
    # has no model.layers.*.causal wildcard; this is that override)
    causal: bool = False


@dataclass
class PlotsConfig:
    enabled: bool = True
    spectrogram: bool = True
    dpi: int = 100
    width_inches: float = 12.0
    max_channels: int = 8  # output channels drawn per layer figure
    # model=module: at most this many conv figures; rate-changing convs, the first and the last
    # come first, the others are spread evenly (the log names the ones left out)
    max_layers: int = 24
    # model=module: which calls get a detailed figure besides the overview of every conv call
    # (plots/layers_overview.png): row names of the layer table (ups.0) or row indices (12; a
    # name made only of digits is read as an index); None: the calls whose rate changes
    layers: Optional[List[str]] = None
    window_ms: float = 32.0  # spectrogram window length (same duration at every rate)
    # Streamed (long) runs: the spectrogram shows this stretch only, seconds from the segment start
    spectrogram_start: float = 0.0
    spectrogram_seconds: float = 10.0
    # The zoom panel under each layer's figure: zoom_samples of the layer's input (0: no panel) and
    # the outputs in the same span, as stems on one time axis. zoom_start: seconds from the segment
    # start; None: centred on the loudest input sample (streamed runs: of the first block read)
    zoom_start: Optional[float] = None
    zoom_samples: int = 40
    # convscope-run / scripts/run.py: figure worker processes that draw the figures while the
    # run goes on (the second core; 2 measured fastest on 2 cores, scripts/bench.py); 0, and
    # library calls: drawn in the run's own process
    workers: int = 2

    def spectrogram_channels(self, available: int) -> int:
        """Output channels the spectrogram figure draws beside the input (at most 3: wider
        panels stop being readable)."""
        return min(available, self.max_channels, 3)


@dataclass
class AudioConfig:
    enabled: bool = True
    subtype: str = "PCM_16"
    peak: float = 0.99  # output WAVs are scaled down (never up) so no sample exceeds this


@dataclass
class StreamConfig:
    """Block-by-block processing of long segments (convscope.pipeline.streamed)."""

    enabled: str = "auto"  # auto: stream segments longer than auto_seconds; true; false
    # output seconds per block: 2-8 s measured fastest for small stacks (fewer calls, still in
    # cache); limits.block_mb cuts it for wide ones
    block_seconds: float = 4.0
    # Measured (scripts/bench.py): up to a minute the one-shot path costs < 1 s and ~420 MB and
    # keeps PCM WAVs with one peak gain, full traces and whole-segment metrics; beyond, its
    # memory grows ~3 MB per audio second (11 GB per hour) while streaming stays at ~260 MB.
    auto_seconds: float = 60.0
    subtype: str = "FLOAT"  # streamed WAVs: float needs no global peak, so no gain is applied
    # torch threads while streaming (0: torch's default). Per-block ops are small: on a shared
    # 2-core machine one thread measured 1.5-7x faster than two, which spin-wait on each other.
    threads: int = 1
    # read the next input block and write the last output block on threads while a block is
    # computed (bounded queues; errors and Ctrl-C handled as without); false: all in one thread
    background_io: bool = True
    # overlap: blocks of output computed with the context they need (recomputed per block);
    # stateful: chunks of any size through per-layer state, each sample computed once
    mode: str = "overlap"


@dataclass
class EvaluateConfig:
    """Compare one output channel with a real resampler (convscope.quality.evaluate)."""

    enabled: str = "auto"  # auto: when the output rate differs from the input rate; true; false
    channel: int = 0  # output channel compared with the reference
    reference: str = "soxr_hq"  # librosa.resample res_type
    edge_ms: float = 20.0  # left out of every metric at both ends, where zero padding shows


@dataclass
class LearnConfig:
    """Fit the stack to the reference resampler with Adam (convscope.quality.fit, scripts/learn.py)."""

    steps: int = 500
    lr: float = 0.05
    waveform_weight: float = 1.0  # error power / reference power (1/SNR)
    spectral_weight: float = 0.0  # multi-resolution STFT distance (off: ~3x slower per step)
    fft_sizes: List[int] = field(default_factory=lambda: [256, 1024])
    progress: bool = True  # tqdm bar on stderr


@dataclass
class ChunksConfig:
    """The chunk debugger (scripts/chunks.py, convscope.chunk_debugger.debug): the stack run on
    independent chunks, as naive real-time code runs it, against the one-shot result."""

    seconds: float = 0.1  # chunk length, rounded to whole stack-input samples (frames)
    # A sample differs when |naive - exact| exceeds this fraction of the exact output's peak:
    # float32 rounding of a chunk vs the whole signal stays far below it
    tolerance: float = 1e-5
    plot_boundaries: int = 3  # panels in plots/chunk_errors.png: the first boundaries
    plot_window_ms: float = 0.5  # each panel: this long either side of its boundary (at least
    # twice the samples the arithmetic says a boundary affects)


@dataclass
class LimitsConfig:
    """What a run may use, checked before anything is built (convscope.pipeline.preflight): a
    run whose estimate exceeds a limit is refused with the layer key and the figure."""

    memory_fraction: float = 0.5  # of the machine's physical memory, (0, 1]
    memory_gb: Optional[float] = None  # an absolute cap in GB; with the fraction, the smaller
    one_shot_gb: float = 1.0  # stream.enabled=auto: stream whenever one shot would need more
    block_mb: float = 64.0  # a streamed block's arrays at most this big (in output samples)
    max_gmacs: float = 20000.0  # forward multiply-accumulates in 1e9: a time bound (~13 GMAC/s here)
    max_output_gb: float = 8.0  # WAVs on disk


@dataclass
class CorpusConfig:
    """A folder or glob in data.path (convscope.corpus.run); a single file ignores these."""

    # Worker processes the shard's files are spread over: 0 = every usable core (the CPU
    # affinity mask, a SLURM or taskset allotment), 1 = in this process, as a single run; never
    # more than the shard has files. Each worker gets 1 / workers of the memory budget (limits).
    workers: int = 0
    # Figures (plots/) and the per-file index.html for the first N files of the sorted shard
    # only: they cost 5-10 s for a 6 s clip on a busy 2-core machine, the rest of a file ~0.1 s.
    # -1 or None: every file. shapes.json, metrics.json and the WAVs are written for every file,
    # and the corpus index lists them all.
    figures_files: Optional[int] = 3


@dataclass
class SaveConfig:
    weights: bool = True
    shapes: bool = True


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    plots: PlotsConfig = field(default_factory=PlotsConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    save: SaveConfig = field(default_factory=SaveConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    seed: int = 0
    device: str = "cpu"
    report: bool = True  # index.html in the run dir
    replace: bool = False  # a run dir that holds a run: refused, or with true emptied first
    tensorboard: bool = False  # event files in <run dir>/tensorboard/ (the optional extra)


@dataclass
class LearnRunConfig(RunConfig):
    """scripts/learn.py's schema (configs/learn.yaml): a run plus the fitting settings."""

    learn: LearnConfig = field(default_factory=LearnConfig)


@dataclass
class DesignConfig:
    """scripts/design.py's schema (configs/design.yaml): which upsampler to design, how to score.

    Give sr and hop (feature frames -> audio, ratio hop) or in_rate and out_rate (waveform ->
    waveform, ratio out_rate / in_rate, an integer > 1)."""

    sr: Optional[int] = None
    hop: Optional[int] = None
    in_rate: Optional[int] = None
    out_rate: Optional[int] = None
    n_mels: int = 80  # input channels of a feature stack (1 for a waveform)
    n_fft: Optional[int] = None  # the written frontend's; None: 4 x hop up to a power of two
    min_layers: int = 2
    max_layers: int = 6
    # Strides above this are not tried (None: any): a 64-tap stride-32 layer is cheap on paper but
    # rings at its stride; published vocoders stay at or below 8 (HiFi-GAN, BigVGAN) to 10-12
    max_stride: Optional[int] = 8
    multiples: List[int] = field(default_factory=lambda: [1, 2, 3, 4])  # kernel = m x stride
    kernels: Optional[List[int]] = None  # explicit kernel sizes instead of multiples
    channels: int = 512  # the first layer's output channels
    channel_factor: float = 0.5  # each later layer's channels: the previous x this
    out_channels: int = 1  # the last layer's output channels
    rank_by: List[str] = field(default_factory=lambda: ["image_db", "lookahead_ms", "macs"])
    top: int = 5  # rows on the console and model configs written
    measure: int = 10  # candidates whose random-init stride tone is measured (a forward each)
    probe_channels: int = 8  # channel cap of the stacks the tone is measured on
    max_candidates: int = 20000
    seed: int = 0
    replace: bool = False  # a run dir that holds a run: refused, or with true emptied first


@dataclass
class ChunksRunConfig(RunConfig):
    """scripts/chunks.py's schema: configs/chunks.yaml composes run.yaml, plus `chunks`."""

    chunks: ChunksConfig = field(default_factory=ChunksConfig)
