"""The learn stage on tiny runs, its config, and one real run of scripts/run.py model=sinc_x2."""

from __future__ import annotations

import json

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
