"""The figures say what they draw: each layer's figure draws that layer's real input (true shape
in the title, every channel up to plots.max_channels), its zoom counts the taps torch sums, the
spectrogram shares one frequency axis up to the output's Nyquist, absent dB values read "none"
and the sweep summary says which way is better and shows length differences."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from torch import nn

from convscope.audio.segment import Segment
from convscope.config.checks import check_values
from convscope.config.convert import register_configs, to_run_config
from convscope.config.schema import PlotsConfig, RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.figures import module_geometry
from convscope.pipeline.oneshot import write_plots
from convscope.plots.quality import plot_spectrum
from convscope.plots.sweep import plot_summary
from convscope.quality.evaluate import Evaluation, EvaluationPlan
from convscope.quality.metrics import FLOOR_DB, Metrics
from convscope.report.metrics import metrics_table
from convscope.rundir import RunDir
from convscope.stack.trace import torch_threads, trace_stack
from tests.helpers import REPO

SR = 1000
SMALL = PlotsConfig(dpi=30, width_inches=6, zoom_samples=20)


def _texts(figure) -> str:
    """Every string on the figure: titles, axis labels, annotations, legends (save drew it)."""
    found = [t.get_text() for t in figure.findobj(lambda a: hasattr(a, "get_text"))]
    return "\n".join(found)


def _run(tmp_path: Path, stack: nn.Sequential, samples: np.ndarray, plots: PlotsConfig):
    source = Segment(samples.astype(np.float32), SR, tmp_path / "in.wav", 0.0,
                     samples.shape[-1] / SR)
    with torch_threads(1):
        traces = trace_stack(stack, source.samples[None], torch.device("cpu"))
    rates, rate = [], Fraction(SR)
    for layer in stack:
        rate *= layer.stride[0] if isinstance(layer, nn.ConvTranspose1d) else 1
        rate /= layer.stride[0] if type(layer) is nn.Conv1d else 1
        rates.append(rate)
    geometries = {i: module_geometry(layer) for i, layer in enumerate(stack)}
    cfg = replace(RunConfig(), plots=plots)
    return traces, write_plots(RunDir(tmp_path), source, traces, rates, cfg, geometries)


def test_each_layer_figure_draws_its_own_input_and_counts_torchs_taps(tmp_path):
    torch.manual_seed(0)
    stereo = np.stack([np.sin(np.arange(300) / 7), np.cos(np.arange(300) / 3)])
    up = nn.ConvTranspose1d(3, 1, 5, stride=2, padding=2, output_padding=1, bias=False)
    stack = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), up)
    traces, figures = _run(tmp_path, stack, stereo, replace(SMALL, zoom_start=0.0,
                                                                 spectrogram=False))
    first, second = (_texts(f) for f in figures[:2])
    assert "input [1, 2, 300] at 1000 Hz (the stack input)" in first
    assert "input [1, 3, 300] at 1000 Hz (layer 0's output)" in second
    assert "output [1, 1, 600] at 2000 Hz" in second
    # every input channel drawn (stereo: both) and said so
    assert "input ch 1\n(amplitude)" in first and "all 2 channels" in first
    assert "input ch 2\n(amplitude)" in second
    assert (tmp_path / "plots" / "layer1_ConvTranspose1d.png").is_file()
    # the zoom's tap counts are what torch sums: all-ones weights on an all-ones input
    with torch.no_grad():
        ones = nn.functional.conv_transpose1d(torch.ones(1, 1, 300), torch.ones(1, 1, 5),
                                              stride=2, padding=2, output_padding=1)[0, 0]
    numbers = [int(t) for t in second.split("\n") if t.isdigit() and len(t) == 1]
    assert numbers[:40] == ones[:40].int().tolist()
    assert ones[:5].int().tolist() == [2, 2, 3, 2, 3]


def test_max_channels_caps_the_drawn_input_and_says_so(tmp_path):
    wide = np.random.default_rng(1).standard_normal((5, 200))
    stack = nn.Sequential(nn.Conv1d(5, 1, 3, padding=1))
    _, figures = _run(tmp_path, stack, wide, replace(SMALL, max_channels=2, spectrogram=False))
    text = _texts(figures[0])
    assert "input [1, 5, 200]" in text and "channels 0-1 of 5 (plots.max_channels)" in text
    assert "input ch 1\n" in text and "input ch 2\n" not in text


def test_spectrogram_shares_one_axis_up_to_the_output_nyquist(tmp_path):
    x = np.sin(2 * np.pi * 60 * np.arange(2000) / SR)[None]
    stack = nn.Sequential(nn.ConvTranspose1d(1, 2, 4, stride=2, padding=1))
    _, figures = _run(tmp_path, stack, x, replace(SMALL, zoom_samples=0))
    spectrogram = figures[-1]
    panels = [ax for ax in spectrogram.axes if ax.get_title()]
    assert len(panels) == 3  # input, output ch 0, output ch 1
    for ax in panels:
        assert ax.get_ylim() == pytest.approx((0, 2 * SR / 2 / 1000))
    assert "input Nyquist 0.5 kHz" in _texts(spectrogram)


def test_absent_values_read_none_never_minus_200(tmp_path):
    plan = EvaluationPlan(0, "soxr_hq", SR, 2 * SR, 2, 10)
    t = np.arange(4000) / (2 * SR)
    tone = np.sin(2 * np.pi * 50 * t)
    metrics = Metrics(snr_db=FLOOR_DB, lsd_db=0.0, image_db=-FLOOR_DB, tone_db=-FLOOR_DB)
    figure = plot_spectrum(tmp_path / "spectrum.png", Evaluation(plan, metrics, tone, tone),
                           SMALL)
    text = _texts(figure)
    assert "stride tone none" in text and "-200" not in text
    page = metrics_table(metrics.as_json())
    assert "none" in page and "-200" not in page
    rows = [{"job": str(i), "overrides": f"model.layers.0.padding={i} data=constant",
             "status": "ok", "output_shape": f"1x1x{length}", "tone_db": tone_db}
            for i, (length, tone_db) in enumerate([(31998, -FLOOR_DB), (32001, -14.2)])]
    summary = plot_summary(tmp_path / "summary.png", rows)
    text = _texts(summary)
    assert "-200" not in text and "none" in text and "lower is better" in text
    # lengths as differences: 31998 and 32001 are bars of 0 and 3, each labelled with its length
    length_ax = summary.axes[-1]
    assert [p.get_height() for p in length_ax.patches] == [0, 3]
    assert "31998" in text and "32001" in text and "every job: data=constant" in text


@pytest.fixture(scope="module")
def default_config() -> RunConfig:
    """configs/run.yaml as scripts/run.py composes it."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "configs")):
        cfg = to_run_config(compose("run"))
    GlobalHydra.instance().clear()
    return cfg


def test_zoom_defaults_come_from_run_yaml(default_config):
    assert (default_config.plots.zoom_start, default_config.plots.zoom_samples) == (None, 40)
    check_values(default_config)


@pytest.mark.parametrize("key, value", [("zoom_samples", -1), ("zoom_samples", 10_000),
                                        ("zoom_start", -0.5), ("zoom_start", float("nan"))])
def test_bad_zoom_settings_name_their_key(default_config, key, value):
    cfg = replace(default_config, plots=replace(default_config.plots, **{key: value}))
    with pytest.raises(ConvscopeError, match=f"plots.{key}"):
        check_values(cfg)


@pytest.mark.parametrize("workers", [-1, 9])
def test_a_bad_worker_count_names_its_key(default_config, workers):
    assert default_config.plots.workers == PlotsConfig().workers == 2  # run.yaml = schema
    cfg = replace(default_config, plots=replace(default_config.plots, workers=workers))
    with pytest.raises(ConvscopeError, match=r"plots\.workers must be in \[0, 8\].*got"):
        check_values(cfg)
