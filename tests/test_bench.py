"""The start-up shortcuts scripts/bench.py relies on give exactly what they replace:
soundfile + soxr for librosa.load, soxr for librosa.resample, arithmetic for FlopCounterMode."""

from __future__ import annotations

import random
import subprocess

import librosa
import numpy as np
import pytest
import torch
from torch import nn

from convscope.audio.segment import load_segment
from convscope.config.schema import DataConfig, LayerConfig
from convscope.quality.evaluate import EvaluationPlan, reference_signal
from convscope.stack.plan import plan_stack
from convscope.stack.rows import count_macs
from tests.helpers import REPO


@pytest.mark.parametrize("sr,start,end,mono", [(16000, 2.0, 3.0, True), (22050, 0.3, None, True),
                                               (8000, 1.17, 2.5, False)])
def test_load_segment_equals_librosa_load(make_wav, sr, start, end, mono):
    rng = np.random.default_rng(0)
    path = make_wav("x.wav", sr=22050, data=0.3 * rng.standard_normal((22050 * 4 + 3, 2)),
                    subtype="FLOAT")
    segment = load_segment(DataConfig(path=str(path), sr=sr, start=start, end=end, mono=mono),
                           REPO)
    duration = (4 * 22050 + 3) / 22050
    expected, _ = librosa.load(str(path), sr=sr, mono=mono, offset=start,
                               duration=(end or duration) - start, dtype=np.float32)
    np.testing.assert_array_equal(segment.samples, np.atleast_2d(expected))


def test_bundled_sample_loads_as_librosa_loads_it():
    segment = load_segment(DataConfig(), REPO)
    expected, _ = librosa.load(str(REPO / "data/sample.wav"), sr=16000, offset=2.0, duration=1.0)
    np.testing.assert_array_equal(segment.samples[0], expected)


@pytest.mark.parametrize("reference", ["soxr_hq", "soxr_vhq"])
def test_evaluate_reference_equals_librosa_resample(reference):
    samples = np.random.default_rng(1).standard_normal((1, 16001)).astype(np.float32)
    plan = EvaluationPlan(0, reference, 16000, 44100, 2, 0)
    got = reference_signal(plan, samples)
    expected = librosa.resample(samples[0], orig_sr=16000, target_sr=44100, res_type=reference)
    np.testing.assert_array_equal(got, expected)


def test_count_macs_equals_flop_counter_mode():
    from torch.utils.flop_counter import FlopCounterMode

    rng = random.Random(0)
    for _ in range(40):
        kind = rng.choice(["Conv1d", "ConvTranspose1d"])
        groups = rng.choice([1, 2])
        spec = LayerConfig(type=kind, in_channels=2 * rng.randint(1, 3),
                           out_channels=2 * rng.randint(1, 3), kernel_size=rng.randint(1, 7),
                           stride=rng.randint(1, 3), padding=rng.randint(0, 2),
                           dilation=rng.randint(1, 2), groups=groups)
        try:
            plan = plan_stack([spec], (rng.randint(1, 2), spec.in_channels, rng.randint(20, 99)))[0]
        except Exception:
            continue
        layer = getattr(nn, kind)(**plan.kwargs, device="meta")
        with FlopCounterMode(display=False) as counter:
            layer(torch.empty(plan.input_shape, device="meta"))
        assert count_macs(plan) == counter.get_total_flops() // 2, plan


@pytest.mark.parametrize("length,nperseg,noverlap", [(16000, 512, 384), (3001, 256, 0),
                                                      (1000, 1000, 0), (4097, 255, 127)])
def test_numpy_spectra_equal_scipy_signal(length, nperseg, noverlap):
    from scipy import signal

    from convscope.quality import spectral

    x = np.random.default_rng(3).standard_normal(length)
    f, t, s = signal.spectrogram(x.astype(np.float32), fs=16000, nperseg=nperseg,
                                 noverlap=noverlap, mode="magnitude", window="hann")
    f2, t2, s2 = spectral.spectrogram_magnitude(x.astype(np.float32), 16000, nperseg, noverlap)
    np.testing.assert_allclose(f2, f)
    np.testing.assert_allclose(t2, t)
    np.testing.assert_allclose(s2, s, rtol=1e-5, atol=1e-9)
    f, p = signal.welch(x, fs=32000, window=("kaiser", 14.0), nperseg=nperseg,
                        noverlap=nperseg // 2, detrend=False, scaling="density")
    f2, p2 = spectral.welch_psd(x, 32000, spectral.kaiser(nperseg, 14.0), nperseg // 2)
    np.testing.assert_allclose(f2, f)
    np.testing.assert_allclose(p2, p, rtol=1e-9, atol=1e-18)
    z = signal.stft(x, nperseg=nperseg, noverlap=noverlap, window="hann", boundary=None,
                    padded=False)[2]
    np.testing.assert_allclose(spectral.stft(x, nperseg, noverlap), z, rtol=1e-9, atol=1e-12)


def _bench_markdown():
    """scripts/bench_markdown.py, which renders docs/benchmarks.md's tables."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_markdown",
                                                  REPO / "scripts" / "bench_markdown.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_tables_are_what_the_measured_results_render():
    """docs/benchmarks.md is bench.py's rendering of docs/benchmarks.json (no hand-typed
    numbers); `make bench` writes it there only, and the guides link it rather than copy it."""
    import json

    bench = _bench_markdown()
    results = json.loads((REPO / "docs" / "benchmarks.json").read_text())
    tables = (REPO / "docs" / "benchmarks.md").read_text()
    assert bench.markdown(results) == tables
    recipe = subprocess.run(["make", "-n", "bench"], cwd=REPO, capture_output=True, text=True)
    assert recipe.returncode == 0, recipe.stderr
    assert "scripts/bench.py --write docs/benchmarks.md" in recipe.stdout
    assert "README" not in recipe.stdout
    first_table = tables.split("\n|", 1)[1].split("\n\n", 1)[0]
    for guide in ("README.md", "docs/streaming.md"):
        text = (REPO / guide).read_text()
        assert "benchmarks.md" in text and first_table not in text, guide
    # every case ran, on the machine the tables name
    for case in ("reference", "corpus", "hour", "forward", "vocoder"):
        assert case in results, case
    assert results["corpus"]["files"] == 1000
    assert results["machine"]["summary"] in tables
