"""The zoom panel's arithmetic against torch: tap counts are what conv_transpose1d / conv1d of
all-ones input with all-ones weights gives, the window keeps inputs and outputs in one time span,
and the inserted zeros sit between the inputs."""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convscope.plots.zoom import (
    ConvGeometry,
    auto_zoom_start,
    conv_reads,
    tap_counts,
    zoom_data,
    zoom_window,
)
from convscope.stack.trace import torch_threads


@pytest.fixture(autouse=True)
def one_thread():
    """Hundreds of tiny convs: threads on a shared machine only spin-wait on each other."""
    with torch_threads(1):
        yield


def _random_transposed(rng: random.Random):
    k, s, d = rng.randint(1, 9), rng.randint(1, 5), rng.randint(1, 3)
    p = rng.randint(0, d * (k - 1))
    op = rng.randint(0, max(s, d) - 1)
    length = rng.randint(1, 30)
    return k, s, p, d, op, length


def test_transposed_tap_counts_are_torchs_ones_by_ones():
    rng = random.Random(12)
    checked = 0
    while checked < 300:
        k, s, p, d, op, length = _random_transposed(rng)
        out_length = (length - 1) * s - 2 * p + d * (k - 1) + op + 1
        if out_length < 1:
            continue
        ones = F.conv_transpose1d(torch.ones(1, 1, length, dtype=torch.float32),
                                  torch.ones(1, 1, k, dtype=torch.float32), stride=s, padding=p,
                                  output_padding=op, dilation=d)[0, 0].numpy()
        taps = tap_counts(ConvGeometry(True, k, s, p, d), length, np.arange(out_length))
        assert np.array_equal(taps, ones), (k, s, p, d, op, length)
        checked += 1


def test_conv1d_tap_counts_are_torchs_ones_by_ones():
    rng = random.Random(7)
    checked = 0
    while checked < 300:
        k, s, d = rng.randint(1, 9), rng.randint(1, 4), rng.randint(1, 3)
        length = rng.randint(1, 40)
        p = rng.randint(0, d * (k - 1) // 2)
        out_length = (length + 2 * p - d * (k - 1) - 1) // s + 1
        if out_length < 1:
            continue
        ones = F.conv1d(torch.ones(1, 1, length, dtype=torch.float32),
                        torch.ones(1, 1, k, dtype=torch.float32), stride=s, padding=p,
                        dilation=d)[0, 0].numpy()
        geometry = ConvGeometry(False, k, s, p, d)
        assert np.array_equal(tap_counts(geometry, length, np.arange(out_length)), ones)
        # the inputs each output reads: one-hot input i (batch row i) lights the outputs reading it
        lit = F.conv1d(torch.eye(length, dtype=torch.float32)[:, None], torch.ones(1, 1, k,
                       dtype=torch.float32), stride=s, padding=p, dilation=d)[:, 0].numpy()
        for o in range(out_length):
            assert conv_reads(geometry, length, o).tolist() == np.nonzero(lit[:, o])[0].tolist()
        checked += 1


def test_artifact_k5s2_starts_2_2_3_2_3():
    """The configs/model/artifact_k5s2 geometry: the issue's [2,2,3,2,3,...] on a constant."""
    taps = tap_counts(ConvGeometry(True, 5, 2, 2), 16000, np.arange(6))
    assert taps.tolist() == [2, 2, 3, 2, 3, 2]


def test_window_shares_one_time_span_and_marks_the_zeros():
    rate_in, s = Fraction(16000), 2
    window = zoom_window(0.5, 40, 16000, 32001, rate_in, rate_in * s)
    assert (window.input_stop - window.input_start) == 40
    assert window.output_start == window.input_start * s
    assert window.output_stop == window.input_stop * s
    data = zoom_data(window, np.ones(40), np.ones(80), rate_in, rate_in * s, 16000,
                     ConvGeometry(True, 5, s, 2))
    assert data.input_times[0] == data.output_times[0] == 0.5
    assert data.output_times[-1] < data.input_times[-1] + 1 / 16000
    # one zero between each pair of inputs, half-way
    assert len(data.zero_times) == 39
    np.testing.assert_allclose(data.zero_times, data.input_times[:-1] + 0.5 / 16000)
    # a window asked for past the end moves back to fit
    late = zoom_window(10.0, 40, 100, 200, rate_in, rate_in * s)
    assert (late.input_start, late.input_stop, late.output_stop) == (60, 100, 200)


def test_auto_start_centres_the_loudest_sample():
    x = np.zeros((2, 1000))
    x[1, 700] = -3.0
    assert auto_zoom_start(x, 1000, 40) == 0.68
    assert auto_zoom_start(np.full((1, 1000), 0.5), 1000, 40) == 0.0


def test_a_huge_stride_zoom_draws_a_bounded_panel_with_exact_counts():
    """Stride 5000, k=10000 (issue 24: the panel's tap table took 23 GB and the run was killed):
    one input sample and the first MAX_ZOOM_OUTPUTS outputs of its span, said so in the title,
    tap counts still equal to torch's ones-by-ones, in chunks."""
    import resource

    from convscope.plots.stems import zoom_title
    from convscope.plots.zoom import MAX_ZOOM_OUTPUTS, zoom_data

    k, s, p, length = 10000, 5000, 2500, 160
    out_length = (length - 1) * s - 2 * p + k
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    window = zoom_window(0.0065, 40, length, out_length, 16000, 16000 * s)
    assert window.input_stop - window.input_start == 1 and window.outputs_cut
    assert window.output_stop - window.output_start == MAX_ZOOM_OUTPUTS
    geometry = ConvGeometry(True, k, s, p)
    zoom = zoom_data(window, np.zeros(1), np.zeros(MAX_ZOOM_OUTPUTS), 16000, 16000 * s, length,
                     geometry)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KB
    ones = torch.nn.functional.conv_transpose1d(
        torch.ones(1, 1, length, dtype=torch.float64), torch.ones(1, 1, k, dtype=torch.float64),
        stride=s, padding=p)[0, 0].numpy()
    assert np.array_equal(zoom.taps, ones[window.output_start: window.output_stop])
    assert len(zoom.zero_times) <= MAX_ZOOM_OUTPUTS
    assert "the first 512 of their span" in zoom_title(zoom)
