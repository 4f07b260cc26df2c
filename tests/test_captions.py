"""Figure captions computed from real runs: their numbers are those of the run's shapes.json and
metrics.json, the taps per output of a transposed layer are torch's own counts, and absent values
read "none". Four small runs (plots, audio and pages off) are shared by the module."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Optional

import pytest
import torch
from hydra import compose, initialize_config_dir

from convscope.config.convert import register_configs, to_run_config
from convscope.config.schema import RunConfig
from convscope.pipeline.single import run
from convscope.quality.metrics import FLOOR_DB, tone_frequencies
from convscope.report.captions import figure_caption
from convscope.report.layer_captions import taps_per_output
from convscope.report.units import hz_text
from convscope.rundir import RunDir
from convscope.stack.plan import plan_stack
from convscope.stack.rates import upsampling_factor
from tests.helpers import REPO

QUIET = ("plots.enabled=false", "audio.enabled=false", "report=false", "save.weights=false")
RUNS = {
    "reference": (),
    "streamed": ("stream.enabled=true", "stream.block_seconds=0.25"),
    # a vocoder's shape, small: mel frames in, a block (Residual) between upsamplers; the real
    # preset (model=hifigan_v1) is the slow test at the end
    "vocoder": ("data=speech", "data.features=log_mel", "data.sr=22050", "data.hop_length=256",
                "data.end=0.2", "model.layers=[{type: Conv1d, out_channels: 8, kernel_size: 7, "
                "padding: 3}, {type: ConvTranspose1d, out_channels: 4, kernel_size: 16, stride: 8, "
                "padding: 4}, {type: Residual, layers: [{type: LeakyReLU}, {type: Conv1d, "
                "out_channels: 4, kernel_size: 3, padding: 1}]}, {type: ConvTranspose1d, "
                "out_channels: 1, kernel_size: 64, stride: 32, padding: 16}]"),
    "module": ("model=module", "model.target=examples/tiny_vocoder.py:TinyVocoder",
               "model.kwargs={channels: 8}", "data=speech", "data.features=log_mel",
               "data.sr=22050", "data.end=0.2"),
}


@dataclass(frozen=True)
class Run:
    cfg: RunConfig
    shapes: dict
    metrics: Optional[dict]

    def caption(self, name: str, metrics: Optional[dict] = None) -> str:
        return figure_caption(name, self.shapes, self.metrics if metrics is None else metrics)


def compose_run_configs(*override_lists: tuple[str, ...]) -> list[RunConfig]:
    register_configs()
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return [to_run_config(compose(config_name="run", overrides=list(overrides)))
                for overrides in override_lists]


def run_quietly(tmp_path_factory, runs: dict[str, tuple[str, ...]]) -> dict[str, Run]:
    """Each named run with plots, audio and pages off; its shapes.json and metrics.json."""
    import json

    configs = compose_run_configs(*((*QUIET, *overrides) for overrides in runs.values()))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # HiFi-GAN on a shared 2-core machine: one thread is faster
    try:
        done = {}
        for name, cfg in zip(runs, configs):
            out = tmp_path_factory.mktemp(name)
            result = run(cfg, out, base_dir=REPO)
            metrics_path = RunDir(out).metrics
            metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
            done[name] = Run(cfg, json.loads(RunDir(out).shapes.read_text()), metrics)
            assert done[name].shapes == json.loads(json.dumps(result.shapes))
        return done
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    return run_quietly(tmp_path_factory, RUNS)


def torch_taps(kernel_size: int, stride: int, padding: int, dilation: int) -> list[int]:
    """Taps landing on outputs 0..stride-1 of the pattern, counted by torch: all-ones kernel on an
    all-ones input, read in the middle (away from the edges) at outputs n = 0..s-1 (mod s)."""
    layer = torch.nn.ConvTranspose1d(1, 1, kernel_size, stride, padding, dilation=dilation,
                                     bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
        y = layer(torch.ones(1, 1, 64))[0, 0]
    middle = (len(y) // 2) // stride * stride
    return [int(round(float(v))) for v in y[middle: middle + stride]]


def test_taps_per_output_is_what_torch_sums():
    rng = random.Random(0)
    cases = [(5, 2, 2, 1), (4, 2, 1, 1), (16, 8, 4, 1), (3, 4, 0, 1)]
    cases += [(k, s, rng.randrange(0, k), d) for k, s, d in
              ((rng.randint(1, 12), rng.randint(1, 6), rng.randint(1, 3)) for _ in range(60))]
    for k, s, p, d in cases:
        assert taps_per_output(k, s, p, d) == torch_taps(k, s, p, d), (k, s, p, d)


def test_transposed_layer_caption_says_the_run_shapes_and_torch_taps(runs):
    shapes = runs["reference"].shapes
    row = shapes["layers"][1]
    conv, (_, c_in, l_in), (_, c_out, l_out) = row["conv"], row["input_shape"], \
        row["output_shape"]
    caption = runs["reference"].caption(RunDir.layer_plot_name(1, row["type"]))
    assert caption.startswith(f"layer 1 ({row['type']} k{conv['kernel_size']} s{conv['stride']} "
                              f"p{conv['padding']}")
    assert f"{l_in} → {l_out} samples" in caption and f"{c_in} → {c_out} channels" in caption
    taps = torch_taps(conv["kernel_size"], conv["stride"], conv["padding"], conv["dilation"])
    assert f"k/s = {conv['kernel_size'] / conv['stride']:g} taps per output" in caption
    assert f"outputs alternate {min(taps)} and {max(taps)} taps" in caption
    assert "ripple on a constant" in caption


def test_spectrum_captions_carry_the_metrics_and_the_tone_lines(runs):
    ref = runs["reference"]
    m, source, output = ref.metrics, ref.shapes["input"], ref.shapes["output"]
    plans = plan_stack(ref.cfg.model.layers, tuple(source["shape"]))
    tones = tone_frequencies(output["sample_rate"], upsampling_factor(plans))
    spectrum = ref.caption(RunDir.SPECTRUM)
    for key in ("snr_db", "lsd_db", "image_db", "tone_db"):
        assert f"{m[key]:.1f} dB" in spectrum, key
    assert f"stride tone ({', '.join(hz_text(f) for f in tones)})" in spectrum
    assert f"against the {m['reference']} reference" in spectrum
    spectrogram = ref.caption(RunDir.SPECTROGRAM)
    nyquist = hz_text(source["sample_rate"] / 2)
    assert f"images above {nyquist} at {m['image_db']:.1f} dB" in spectrogram
    assert f"up to {hz_text(output['sample_rate'] / 2)}" in spectrogram
    k = ref.shapes["layers"][1]["conv"]["kernel_size"]
    assert f"the {k}-tap kernel of layer 1 does not remove them" in spectrogram  # -12 dB images


def test_absent_values_read_none(runs):
    ref = runs["reference"]
    floored = {**ref.metrics, "tone_db": -FLOOR_DB}  # what the metrics write for "no tone"
    assert re.search(r"stride tone \([^)]*\) none\b", ref.caption(RunDir.SPECTRUM, floored))
    assert "-200" not in ref.caption(RunDir.SPECTRUM, floored)
    assert "none measured" in figure_caption(RunDir.SPECTROGRAM, ref.shapes, None)
    assert "none" in figure_caption(RunDir.SPECTRUM, ref.shapes, None)
    learn_before_only = {"before": ref.metrics}
    assert "After (spectrum.png): SNR none" in ref.caption(RunDir.SPECTRUM_BEFORE,
                                                           learn_before_only)
    assert figure_caption("something_else.png", ref.shapes, ref.metrics) == ""


def test_learn_captions_compare_before_and_after(runs):
    ref = runs["reference"]
    before = ref.metrics
    after = {**before, "snr_db": before["snr_db"] + 20.0, "image_db": before["image_db"] - 30.0}
    learned = {"before": before, "after": after}
    assert (f"rose from {before['snr_db']:.1f} dB to {after['snr_db']:.1f} dB"
            in ref.caption(RunDir.LOSS, learned))
    assert (f"Images went from {before['image_db']:.1f} dB to {after['image_db']:.1f} dB"
            in ref.caption(RunDir.KERNELS, learned))
    spectrum = ref.caption(RunDir.SPECTRUM, learned)
    assert "after learning" in spectrum and f"SNR {after['snr_db']:.1f} dB" in spectrum


def test_feature_input_and_block_captions(runs):
    check_feature_input_and_block_captions(runs["vocoder"], up=1, block=2, block_type="Residual")


def check_feature_input_and_block_captions(vocoder: Run, up: int, block: int,
                                           block_type: str) -> None:
    source, layers = vocoder.shapes["input"], vocoder.shapes["layers"]
    features = source["features"]
    first = vocoder.caption(RunDir.layer_plot_name(0, layers[0]["type"]))
    assert f"{source['shape'][-1]} frames kept" in first
    assert (f"{features['kind']} frames, not audio: {features['n_mels']} bands "
            f"({features['fmin']:g}-{features['fmax']:g} Hz) x {source['shape'][-1]} frames, "
            f"one every {features['hop_length']} samples") in first
    row = next(row for row in layers if row.get("key") == f"model.layers.{up}")
    up_caption = vocoder.caption(RunDir.layer_plot_name(up, row["type"]))
    assert up_caption.startswith(f"layer {up} (ConvTranspose1d k{row['conv']['kernel_size']} "
                                 f"s{row['conv']['stride']} p{row['conv']['padding']}")
    assert f"{row['input_shape'][-1]} frames → {row['output_shape'][-1]} samples" in up_caption
    inside = [row for row in layers if row.get("key", "").startswith(f"model.layers.{block}.")]
    caption = vocoder.caption(RunDir.layer_plot_name(block, block_type))
    assert f"({block_type}, {len(inside)} calls)" in caption
    assert f"rows {inside[0]['index']}-{inside[-1]['index']}" in caption
    assert f"{features['n_mels']} bands" in vocoder.caption(RunDir.SPECTROGRAM)


def test_module_model_figures_are_numbered_like_its_rows(runs):
    module = runs["module"]
    for row in module.shapes["layers"]:
        caption = module.caption(RunDir.layer_plot_name(row["index"], row["type"]))
        assert caption.startswith(f"layer {row['index']} ({row['type']}"), caption
        assert f"{row['output_shape'][-1]}" in caption
        if row["type"] == "ConvTranspose1d":
            stride = row["conv"]["stride"]
            assert f"{stride - 1} zeros go between input samples" in caption


def test_streamed_captions_say_what_was_drawn(runs):
    streamed = runs["streamed"]
    start, end = streamed.shapes["stream"]["window_seconds"]
    assert f"only {start:g}-{end:g} s of the segment" in streamed.caption(RunDir.SPECTROGRAM)
    row = streamed.shapes["layers"][0]
    assert "min/max envelope" in streamed.caption(RunDir.layer_plot_name(0, row["type"]))
    # the one-shot run's captions have no such notes
    assert "Streamed" not in runs["reference"].caption(RunDir.SPECTROGRAM)


@pytest.mark.slow
def test_hifigan_v1_preset_captions(tmp_path_factory):
    # about 25 s on 2 cores: pytest -m slow tests/test_captions.py
    preset = run_quietly(tmp_path_factory, {"preset": (
        "model=hifigan_v1", "data=speech", "data.features=log_mel", "data.sr=22050",
        "data.hop_length=256", "data.n_fft=1024", "data.n_mels=80", "data.end=0.1")})["preset"]
    layers = preset.shapes["layers"]
    assert layers[2]["key"] == "model.layers.2" and layers[2]["type"] == "ConvTranspose1d"
    check_feature_input_and_block_captions(preset, up=2, block=3, block_type="Parallel")
