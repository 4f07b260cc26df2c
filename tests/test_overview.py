"""Figures that scale with depth: the overview of every conv call, the choice of detailed figures
(plots.layers), at most 8 channel panels per layer figure, the zoom window named in the legend.

Oracles: describe()'s rows and rates for the same model, torch's own layer outputs (their RMS, by
forward hooks written here), the figure's own artists.
"""

from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

import convscope
from convscope.config.schema import PlotsConfig, RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.figures import conv_label, submit_overview
from convscope.plots.layers import plot_layer
from convscope.plots.selection import choose_evenly, figure_rows
from convscope.plots.signals import LayerSignals, channel_panels
from convscope.plots.zoom import zoom_data, zoom_window
from convscope.report.captions import figure_caption
from convscope.rundir import RunDir
from tests.reference_generators import HIFIGAN_CONFIGS, HifiGanGenerator

QUICK = PlotsConfig(dpi=40, width_inches=8, workers=0)


@pytest.fixture(scope="module")
def hifigan():
    """HiFi-GAN V1's structure (78 conv calls), narrow; its rows, and each conv call's output
    RMS measured by hooks here."""
    torch.manual_seed(0)
    model = HifiGanGenerator(dict(HIFIGAN_CONFIGS["hifigan_v1"], upsample_initial_channel=16))
    x = torch.randn(1, 80, 12)
    levels = []
    handles = [m.register_forward_hook(
        lambda _m, _a, out: levels.append(float(out.double().pow(2).mean().sqrt())))
        for m in model.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]
    rows = convscope.describe(model, x, sample_rate="22050/256").rows
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return rows, levels[-78:]  # the plain forward's calls (describe's came first)


def test_detailed_figures_default_to_the_rate_changes_and_plots_layers_picks_others(hifigan):
    rows, _ = hifigan
    ups = [row.index for row in rows if row.name.startswith("ups.")]
    assert figure_rows(rows) == ups and len(ups) == 4
    assert all(rows[i].rate_out == 8 * rows[i].rate_in for i in ups[:2])
    named = figure_rows(rows, ["conv_post", "resblocks.0.convs1.1", str(ups[1])])
    assert named == sorted([rows[-1].index, ups[1]] + [row.index for row in rows
                                                         if row.name == "resblocks.0.convs1.1"])
    with pytest.raises(ConvscopeError, match=r"^plots.layers: no row named 'ups\.9'; the conv "
                                             r"rows are conv_pre, ups\.0, "):
        figure_rows(rows, ["ups.9"])
    with pytest.raises(ConvscopeError, match=r"^plots.layers: row 500 does not exist; the layer "
                                             rf"table has rows 0-{len(rows) - 1}$"):
        figure_rows(rows, ["500"])


def test_the_overview_draws_every_conv_call_at_torchs_level(hifigan, tmp_path):
    rows, levels = hifigan
    ups = figure_rows(rows)
    figure = submit_overview(tmp_path / "overview.png", rows, levels, ups, "hifigan", QUICK)
    assert (tmp_path / "overview.png").is_file()
    ax = figure.axes[0]
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert len(labels) == 78 and labels[1].split() == ["1", "ups.0", "ConvTranspose1d", "k16",
                                                       "s8", "->", "8", "ch"]
    assert [tick.get_fontweight() == "bold" for tick in ax.get_yticklabels()] == [
        row.index in ups for row in rows if row.conv is not None]
    bars = ax.patches
    ends = [bar.get_x() + bar.get_width() for bar in bars]
    np.testing.assert_allclose(ends, [20 * math.log10(level) for level in levels], atol=1e-9)
    changes = [text.get_text() for text in ax.texts]
    assert changes[0] == " x8: 11025/128 = 86.1328 -> 11025/16 = 689.062 Hz" and len(changes) == 4


def test_the_overview_caption_names_the_rate_changes(hifigan):
    rows, _ = hifigan
    shapes = {"layers": [row.as_json() for row in rows]}
    caption = figure_caption(RunDir.LAYERS_OVERVIEW, shapes, None)
    assert caption.startswith("Every conv call of the model, 78 rows in call order")
    assert "ups.0 (86.1328 Hz → 689.062 Hz), ups.1 (689.062 Hz → 5.5125 kHz)" in caption


@pytest.mark.parametrize("inputs, outputs, shown", [
    (1, 8, (1, 7)), (16, 16, (4, 4)), (2, 16, (2, 6)), (16, 1, (7, 1)), (3, 4, (3, 4))])
def test_channel_panels_stay_within_eight(inputs, outputs, shown):
    assert channel_panels(inputs, outputs) == shown


def test_a_wide_layer_figure_has_eight_channel_rows_and_a_named_zoom_window(tmp_path):
    rate = Fraction(1000)
    x = np.random.default_rng(0).standard_normal((16, 400))
    y = np.random.default_rng(1).standard_normal((16, 400))
    window = zoom_window(0.1, 40, 400, 400, rate, rate)
    zoom = zoom_data(window, x[0, window.input_start:window.input_stop],
                     y[0, window.output_start:window.output_stop], rate, rate, 400)
    layer = LayerSignals(3, "Conv1d", x, [1, 16, 400], rate, "layer 2's output", y, [1, 16, 400],
                         rate, zoom)
    figure = plot_layer(tmp_path / "layer.png", layer, replace(QUICK, max_channels=16))
    channel_rows = [ax for ax in figure.axes if " ch " in ax.get_ylabel()]
    assert len(channel_rows) == 8 + 2  # 4 inputs, 4 outputs, the zoom panel's two rows
    title = figure.texts[0].get_text() if figure.texts else figure._suptitle.get_text()
    assert "channels 0-3 of 16 (8 channel panels per figure)" in title
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    start, stop = zoom.input_times[0] * 1000, zoom.input_times[-1] * 1000
    assert legend == [f"zoom window (bottom panels): {start:.1f}-{stop:.1f} ms"]


def test_conv_label_says_stride_and_dilation_only_when_they_matter(hifigan):
    rows, _ = hifigan
    by_name = {row.name: row for row in rows}
    assert conv_label(by_name["conv_pre"]) == "Conv1d k7 -> 16 ch"
    assert conv_label(by_name["resblocks.0.convs1.1"]) == "Conv1d k3 d3 -> 8 ch"
    assert isinstance(RunConfig().plots.layers, type(None))


@pytest.mark.parametrize("count, first_choice, cap", [
    (90, {10, 40, 70}, 24), (5, set(), 24), (30, set(), 1), (30, set(range(0, 30, 3)), 4),
    (12, {0, 11}, 2), (7, {3}, 3)])
def test_choose_evenly_keeps_the_rate_changers_the_ends_and_the_cap(count, first_choice, cap):
    items = list(range(100, 100 + count))
    first = {items[i] for i in first_choice}
    chosen = choose_evenly(items, first, cap)
    assert chosen == sorted(set(chosen)) and set(chosen) <= set(items)
    assert len(chosen) == min(count, cap)
    must = first | {items[0], items[-1]}
    if len(must) <= cap:
        assert must <= set(chosen)
    if len(chosen) > 2:  # the rest is spread: no gap between chosen items much over the even one
        gaps = np.diff(chosen)
        assert gaps.max() <= 2 * count / len(chosen) + 1
