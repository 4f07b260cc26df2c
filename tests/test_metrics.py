"""Metrics on synthetic signals whose answers are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convscope.config.schema import EvaluateConfig
from convscope.quality.evaluate import evaluate_output, evaluation_plan, format_metrics
from convscope.quality.metrics import (
    FLOOR_DB,
    compare,
    image_level_db,
    log_spectral_distance_db,
    ratio_db,
    snr_db,
    tone_frequencies,
    tone_level_db,
    trim_edges,
)

RATE = 32000


def sine(freq: float, amplitude: float = 1.0, seconds: float = 1.0, rate: int = RATE,
         phase: float = 0.3) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate + phase)


def test_snr_of_a_known_error_power():
    reference = sine(440.0)
    noise = np.random.default_rng(0).standard_normal(len(reference))
    noise *= np.sqrt(np.mean(reference ** 2) / np.mean(noise ** 2) * 1e-3)  # 30 dB below
    assert snr_db(reference + noise, reference) == pytest.approx(30.0, abs=1e-9)


def test_snr_uses_the_common_length_and_clips_a_perfect_match():
    reference = sine(440.0)
    assert snr_db(np.append(reference, [5.0, 5.0]), reference) == FLOOR_DB
    assert ratio_db(0.0, 1.0) == -FLOOR_DB


def test_a_pure_tone_has_no_images():
    assert image_level_db(sine(1000.0), RATE, 16000) < -150


def test_a_known_image_level():
    """A tone plus its image 20 dB down: 1 kHz and 15 kHz at amplitude 0.1."""
    signal = sine(1000.0) + sine(15000.0, amplitude=0.1)
    assert image_level_db(signal, RATE, 16000) == pytest.approx(-20.0, abs=0.05)


def test_tone_of_the_uneven_pattern():
    """[2,2,3,2,3,...] = 2.5 - 0.5*(-1)^n: a Nyquist line of power 0.25 in a mean square of 6.5."""
    pattern = np.tile([2.0, 3.0], RATE // 2)
    expected = 10 * np.log10(0.25 / 6.5)
    assert tone_level_db(pattern, RATE, 2) == pytest.approx(expected, abs=0.01)
    assert tone_level_db(np.full(RATE, 2.5), RATE, 2) == -FLOOR_DB


def test_the_seed_layer_with_all_ones_weights_makes_that_tone():
    """The reference example's layer 2 geometry on a constant: [2,2,3,2,3,...] and -14.15 dB."""
    layer = torch.nn.ConvTranspose1d(1, 1, kernel_size=5, stride=2, padding=2, output_padding=1,
                                     bias=False)
    torch.nn.init.ones_(layer.weight)
    with torch.no_grad():
        y = layer(torch.ones(1, 1, 16000))[0, 0].numpy()
    np.testing.assert_array_equal(y[:5], [2, 2, 3, 2, 3])
    assert tone_level_db(trim_edges(y, 640), RATE, 2) == pytest.approx(-14.15, abs=0.01)


def test_tone_lines_of_a_stack_upsampling_by_four():
    assert tone_frequencies(64000, 4) == [16000.0, 32000.0]
    signal = np.full(64000, 1.0) + 0.1 * np.cos(np.pi / 2 * np.arange(64000))  # 16 kHz line
    assert tone_level_db(signal, 64000, 4) == pytest.approx(10 * np.log10(0.005 / 1.005), abs=0.01)


def test_log_spectral_distance_of_a_gain():
    noise = np.random.default_rng(1).standard_normal(RATE)
    assert log_spectral_distance_db(noise, noise) == 0.0
    assert log_spectral_distance_db(2 * noise, noise) == pytest.approx(20 * np.log10(2), abs=1e-6)


def test_compare_trims_edges_before_measuring():
    reference = sine(500.0)
    output = reference.copy()
    output[:100] += 1.0  # a start-up transient: inside the edge, so it doesn't count
    metrics = compare(output, reference, RATE, 16000, upsampling=2, edge=200)
    assert metrics.snr_db == FLOOR_DB and metrics.lsd_db == 0.0
    assert compare(output, reference, RATE, 16000, 2, edge=0).snr_db < 40
    assert set(metrics.as_json()) == {"snr_db", "lsd_db", "image_db", "tone_db"}


@pytest.mark.parametrize("edge_ms,said", [
    (20.0, "(20 ms left out at each end)"),
    # the trim is capped at a third of the signal: the log says what was left out, and why
    (3e6, "(333.312 ms left out at each end: evaluate.edge_ms=3e+06 capped at a third of the "
          "32000 compared samples)"),
])
def test_the_metrics_log_says_how_much_was_left_out(edge_ms, said):
    reference = sine(500.0)[:32000]
    plan = evaluation_plan(EvaluateConfig(enabled="true", edge_ms=edge_ms), 1, 2, 16000, 32000)
    text = format_metrics(evaluate_output(plan, reference.copy(), reference))
    assert text.splitlines()[0].endswith(said)
