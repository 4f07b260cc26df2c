"""The learn stage on tiny runs, its config, and one real run of scripts/run.py model=sinc_x2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException

from convscope.audio.segment import load_segment
from convscope.config.convert import register_configs, to_learn_config, to_run_config
from convscope.config.presets import model_preset
from convscope.config.schema import DataConfig, EvaluateConfig, LearnConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.learn import run_learn
from convscope.quality.evaluate import plan_evaluation, reference_signal
from convscope.quality.fit import fit
from convscope.stack.run_model import run_model
from tests.helpers import REPO, run_script

SHORT_SPEECH = DataConfig(path="data/speech.wav", sr=16000, start=0.5, end=1.0)
TINY = LearnConfig(steps=40, lr=0.05, progress=False)


def compose_learn(*overrides: str):
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "configs")):
        return compose("learn", overrides=list(overrides))


def test_fit_decreases_the_loss_and_raises_the_snr():
    segment = load_segment(SHORT_SPEECH, REPO)
    run = run_model(model_preset("seed_example"), segment.samples[0], 16000)
    plan = plan_evaluation(EvaluateConfig(enabled="true"), run.plans, 16000, 32000)
    reference = reference_signal(plan, segment.samples)
    history = fit(run.stack, torch.as_tensor(segment.samples[None]), reference, plan, TINY)
    assert len(history.losses) == TINY.steps
    assert history.losses[-1] < 0.2 * history.losses[0]
    assert history.snrs[-1] > history.snrs[0] + 10


def test_spectral_loss_term_also_trains():
    segment = load_segment(SHORT_SPEECH, REPO)
    run = run_model(model_preset("seed_example"), segment.samples[0], 16000)
    plan = plan_evaluation(EvaluateConfig(enabled="true"), run.plans, 16000, 32000)
    learn = LearnConfig(steps=15, lr=0.05, spectral_weight=0.5, progress=False)
    history = fit(run.stack, torch.as_tensor(segment.samples[None]),
                  reference_signal(plan, segment.samples), plan, learn)
    assert history.losses[-1] < history.losses[0]


def test_run_learn_writes_before_after_metrics_weights_and_plots(tmp_path):
    cfg = to_run_config({"data": vars(SHORT_SPEECH),
                         "model": {"layers": [vars(layer) for layer in
                                              model_preset("seed_example").layers]}})
    result = run_learn(cfg, TINY, tmp_path, base_dir=REPO)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    keys = {"channel", "reference", "snr_db", "lsd_db", "image_db", "tone_db"}
    assert set(metrics["before"]) == keys and set(metrics["after"]) == keys
    assert metrics["after"]["snr_db"] > metrics["before"]["snr_db"] + 10
    assert metrics["after"]["snr_db"] == pytest.approx(result.after.metrics.snr_db, abs=1e-3)
    state = torch.load(tmp_path / "weights.pt")
    assert set(state) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    for name in ("loss", "kernels", "spectrum", "spectrum_before", "spectrogram"):
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 0
    assert (tmp_path / "audio" / "reference.wav").exists()
    assert (tmp_path / "shapes.json").exists()
    page = (tmp_path / "index.html").read_text()  # captions say what changed, from metrics.json
    before, after = metrics["before"], metrics["after"]
    assert f"rose from {before['snr_db']:.1f} dB to {after['snr_db']:.1f} dB" in page
    assert f"Images went from {before['image_db']:.1f} dB to {after['image_db']:.1f} dB" in page


def test_learn_config_reuses_the_run_groups_and_checks_its_own_keys():
    run_cfg, learn = to_learn_config(compose_learn())
    assert run_cfg.data.path == str(REPO / "data" / "speech.wav")  # the bundled clip, absolute
    assert run_cfg.model.name == "seed_example"
    assert learn.steps == 500 and learn.spectral_weight == 0.0
    run_cfg, learn = to_learn_config(compose_learn("model=hifigan_style", "learn.steps=5"))
    assert run_cfg.model.name == "hifigan_style" and learn.steps == 5
    with pytest.raises(HydraException, match="bogus"):
        compose_learn("learn.bogus=1")
    with pytest.raises(ConvscopeError, match="learn.steps must be >= 1, got 0"):
        to_learn_config(compose_learn("learn.steps=0"))


def test_run_py_sinc_x2_writes_metrics_close_to_soxr(tmp_path):
    result = run_script("run.py", "model=sinc_x2", f"hydra.run.dir={tmp_path}", "report=false")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["channel"] == 0 and metrics["reference"] == "soxr_hq"
    assert metrics["snr_db"] > 45 and metrics["image_db"] < -100 and metrics["tone_db"] < -100
    assert np.isfinite(metrics["lsd_db"]) and metrics["lsd_db"] < 1
    for path in ("plots/spectrum.png", "audio/reference.wav", "shapes.json"):
        assert (tmp_path / path).exists(), path


LEARN_PEAK = """
import sys, torch
from convscope.config.schema import LayerConfig
from convscope.stack.plan import plan_stack
from convscope.stack.build import build_stack
from convscope.pipeline.learn import learn_bytes
torch.set_num_threads(1)
length, channels = int(sys.argv[1]), int(sys.argv[2])
layers = [LayerConfig(type="ConvTranspose1d", out_channels=channels, kernel_size=4, stride=2,
                      padding=1),
          LayerConfig(type="LeakyReLU", negative_slope=0.1),
          LayerConfig(type="Conv1d", out_channels=1, kernel_size=3, padding=1)]
plans = plan_stack(layers, (1, 1, length))
stack, x = build_stack(plans, 0), torch.randn(1, 1, length)
optimizer = torch.optim.Adam(stack.parameters())


def status(key):  # kB in /proc/self/status
    line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
    return int(line.split()[1]) * 1024


# the peak so far (torch's import) must not hide the steps' own: reset it (Linux's clear_refs)
open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS")
for _ in range(2):  # what quality.fit's step does: forward, loss, backward, Adam
    optimizer.zero_grad()
    stack(x).pow(2).mean().backward()
    optimizer.step()
print(learn_bytes(plans, stack).bytes, status("VmHWM") - before)
"""


@pytest.mark.parametrize("length, channels", [
    (1_000_000, 8), pytest.param(200_000, 64, marks=pytest.mark.slow)])
def test_the_learn_preflight_bounds_a_steps_measured_peak_within_2x(length, channels):
    done = subprocess.run([sys.executable, "-c", LEARN_PEAK, str(length), str(channels)],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO / "src")))
    assert done.returncode == 0, done.stderr
    estimate, measured = map(int, done.stdout.split())
    assert measured > 100e6  # the steps dominate the interpreter's noise
    assert measured <= estimate <= 2 * measured


def test_learning_that_would_not_fit_is_refused_before_the_first_step(tmp_path):
    done = run_script("learn.py", "learn.steps=1", "limits.memory_gb=0.001",
                      f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: model.layers.1: each learning step keeps every layer's "
                                  "output and its gradient, ~"), done.stderr
    assert not (tmp_path / "run" / "shapes.json").exists()
