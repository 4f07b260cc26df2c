"""The pre-flight estimate (stack.budget, pipeline.preflight) and the large-stride route-around
(stack.backends): the estimate against measured peak RSS, the choices and refusals it drives,
and torch's own kernels as the oracle for the route-around."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convscope
from convscope.config.checks import check_values
from convscope.config.schema import LayerConfig, LimitsConfig, RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.preflight import preflight
from convscope.pipeline.sizing import Subject
from convscope.pipeline.streamed import readable_span
from convscope.stack.backends import gapped_transposed_conv, safe_kernels
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack
from tests.helpers import REPO

# One run in a fresh interpreter; prints its exit status and the child's peak RSS in bytes.
MEASURE = """
import resource, subprocess, sys
rc = subprocess.run([sys.executable, *sys.argv[1:]], capture_output=True).returncode
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""
LIGHT = ("plots.enabled=false", "audio.enabled=false", "evaluate.enabled=false", "report=false",
         "save.weights=false")


def measured_run(tmp_path, name: str, *overrides: str) -> tuple[int, dict]:
    out = tmp_path / name
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(REPO / "scripts" / "run.py"), *LIGHT, *overrides,
         f"hydra.run.dir={out}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    rc, rss = map(int, result.stdout.split())
    assert rc == 0, result
    return rss, json.loads((out / "shapes.json").read_text())


def test_estimate_tracks_measured_peak_rss(tmp_path):
    """The one-shot forward of a stride-300 stack (about 0.4 GB of activations and col2im
    columns) measured against its estimate, above the RSS of a trivial run of the same script."""
    base_rss, base = measured_run(tmp_path, "base")
    rss, shapes = measured_run(tmp_path, "big", "model.layers.0.stride=300",
                               "stream.enabled=false")
    estimate = shapes["estimate"]
    assert estimate["mode"] == "one-shot" and base["estimate"]["peak_bytes"] < 1e7
    grown = rss - base_rss
    print("estimate", estimate["peak_bytes"], "measured above baseline", grown)
    assert 0.5 * estimate["peak_bytes"] <= grown <= 2 * estimate["peak_bytes"], (grown, estimate)


def config(*layers: LayerConfig, **sections) -> RunConfig:
    cfg = RunConfig()
    cfg = replace(cfg, data=replace(cfg.data, path=str(REPO / "data" / "sample.wav")),
                  model=replace(cfg.model, layers=list(layers)), **sections)
    check_values(cfg)
    return cfg


def seed_example(stride: int) -> list[LayerConfig]:
    return [LayerConfig(type="ConvTranspose1d", in_channels=1, out_channels=2, kernel_size=3,
                        stride=stride, padding=1),
            LayerConfig(type="ConvTranspose1d", in_channels=2, out_channels=3, kernel_size=5,
                        stride=2, padding=2, output_padding=1)]


def checked(cfg: RunConfig, tmp_path):
    span = readable_span(cfg, REPO)
    plans = plan_stack(cfg.model.layers, span.shape)
    return preflight(cfg, span, Subject(build_stack(plans, 0), plans), tmp_path, None)


def test_large_output_streams_in_blocks_bounded_in_output_samples(tmp_path):
    """stride=10000 on 1 s: one shot would hold gigabytes, so auto streams, and a block is
    capped by limits.block_mb, not one second of a 320 MHz output."""
    cfg = config(*seed_example(10000))
    result = checked(cfg, tmp_path)
    assert result.streamed
    assert result.estimate.block_samples < 320_000_000 // 100
    assert result.estimate.forward.bytes <= 2 * cfg.limits.block_mb * 1e6
    small = checked(config(*seed_example(1)), tmp_path)
    assert not small.streamed and small.estimate.block_samples is None


def test_over_the_memory_limit_is_refused_naming_the_layer(tmp_path):
    cfg = config(*seed_example(300), limits=LimitsConfig(memory_gb=0.05))
    cfg = replace(cfg, stream=replace(cfg.stream, enabled="false"))
    with pytest.raises(ConvscopeError, match=r"^model\.layers\.1: the run needs ~.* limit 50 MB"):
        checked(cfg, tmp_path)


def test_absurd_compute_is_refused_naming_the_layer(tmp_path):
    cfg = config(*seed_example(1), limits=LimitsConfig(max_gmacs=1e-4))
    with pytest.raises(ConvscopeError, match=r"^model\.layers\.1: the forward needs ~0\.000576 "):
        checked(cfg, tmp_path)


@pytest.mark.parametrize("key", ["memory_fraction", "one_shot_gb", "block_mb", "max_gmacs",
                                 "max_output_gb", "memory_gb"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf")])
def test_limits_are_validated(key, value):
    with pytest.raises(ConvscopeError, match=rf"^limits\.{key} must be"):
        config(*seed_example(1), limits=LimitsConfig(**{key: value}))


@pytest.mark.parametrize("stride,kernel,dilation,channels", [
    (50, 5, 1, (2, 3)), (7, 3, 2, (2, 1)), (300, 1, 1, (4, 2)), (9, 4, 2, (1, 3))])
def test_gapped_transposed_conv_runs_exactly_as_torch(stride, kernel, dilation, channels):
    """Shapes torch's default kernel still runs: the route-around (oneDNN off) gives its
    output (to float rounding: the kernels sum channels in another order), and with one input
    channel every output sample is one product plus the bias, bit for bit."""
    torch.manual_seed(0)
    layer = nn.ConvTranspose1d(*channels, kernel, stride=stride, dilation=dilation, padding=1,
                               output_padding=1)
    assert gapped_transposed_conv(layer) == (stride > dilation * (kernel - 1) + 1)
    x = torch.randn(1, channels[0], 300)
    with torch.no_grad():
        expected = layer(x)
        with safe_kernels(layer):
            got = layer(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    if channels[0] == 1:
        assert torch.equal(got, expected)
    # and the kernels are torch's own: the functional form under the same flags agrees
    with torch.no_grad(), safe_kernels(layer):
        again = F.conv_transpose1d(x, layer.weight, layer.bias, stride, 1, 1, 1, dilation)
    assert torch.equal(again, got)


def test_non_gapped_stacks_keep_onednn():
    layer = nn.ConvTranspose1d(2, 3, 16, stride=8)
    assert not gapped_transposed_conv(layer) and not gapped_transposed_conv(nn.Conv1d(1, 1, 1))
    with safe_kernels(layer):
        assert torch.backends.mkldnn.enabled


def test_streamed_run_records_the_estimate_it_ran_by(tmp_path):
    """shapes.json of a streamed run holds the estimate, in its streamed mode, with the block
    size the run then used (not only one-shot runs record it)."""
    from convscope.pipeline.single import run
    from convscope.rundir import RunDir

    cfg = config(*seed_example(2))
    cfg = replace(cfg, stream=replace(cfg.stream, enabled="true"),
                  plots=replace(cfg.plots, enabled=False), report=False,
                  audio=replace(cfg.audio, enabled=False),
                  evaluate=replace(cfg.evaluate, enabled="false"))
    run(cfg, tmp_path / "run", REPO)
    shapes = json.loads((tmp_path / "run" / "shapes.json").read_text())
    assert shapes["estimate"]["mode"] == "streamed"
    assert shapes["estimate"]["block_output_samples"] == shapes["stream"]["block_samples"]
    assert shapes["decision"]["block_samples"] == shapes["stream"]["block_samples"]
    assert shapes["decision"]["engine"] == "block rules"  # every leaf has one: stack/streaming
    assert shapes["estimate"]["macs"] == sum(layer["macs"] for layer in shapes["layers"])


def test_stages_turned_off_are_recorded_in_shapes_json(tmp_path):
    """What preflight.lighten turns off is the run's decision, in shapes.json: the composed
    config (.hydra/config.yaml) still says what the user asked for."""
    from convscope.pipeline.single import run
    from convscope.rundir import RunDir

    cfg = config(*seed_example(3))
    cfg = replace(cfg, limits=replace(cfg.limits, one_shot_gb=1e-6), report=False,
                  stream=replace(cfg.stream, enabled="false"))
    shapes = run(cfg, tmp_path / "run", base_dir=REPO).shapes
    turned_off = shapes["decision"]["turned_off"]
    assert [line.split(":")[0] for line in turned_off] == ["plots.spectrogram", "evaluate"]
    assert cfg.plots.spectrogram and cfg.evaluate.enabled == "auto"  # the config, as composed
    files = RunDir(tmp_path / "run")
    assert files.layer_plot(0, "ConvTranspose1d").exists()  # the plots ran, without that one
    assert not files.spectrogram.exists() and not files.metrics.exists()


def test_a_config_stacks_estimate_is_convscope_estimate_of_the_built_stack(tmp_path):
    """One pre-flight for every run: a config stack's shapes.json["estimate"] holds
    convscope.estimate's figures of the stack it built (same one-shot bytes and MACs, the same
    weights: the seed's), and the same keys as a module's run."""
    from convscope.pipeline.single import _build, run

    cfg = config(*seed_example(3))
    cfg = replace(cfg, plots=replace(cfg.plots, enabled=False), report=False,
                  audio=replace(cfg.audio, enabled=False),
                  evaluate=replace(cfg.evaluate, enabled="false"))
    shapes = run(cfg, tmp_path / "stack", REPO).shapes
    span = readable_span(cfg, REPO)
    stack = _build(cfg, plan_stack(cfg.model.layers, span.shape))
    found = convscope.estimate(stack, span.shape, sample_rate=span.sample_rate)
    estimate = shapes["estimate"]
    assert (estimate["one_shot_bytes"], estimate["one_shot_macs"]) == \
        (found.one_shot_bytes, found.one_shot_macs)
    assert estimate["forward_bytes"] == found.one_shot_bytes > 0
    assert estimate["output_shape"] == list(shapes["layers"][-1]["output_shape"])
    module = convscope.run(["plots.enabled=false", "report=false", "audio.enabled=false",
                            "evaluate.enabled=false", "save.weights=false"], model=stack,
                           audio=np.random.default_rng(0).standard_normal(800).astype(
                               np.float32), sample_rate=16000,
                           out_dir=tmp_path / "module")
    assert set(module.shapes["estimate"]) == set(estimate)


def test_a_model_run_over_max_output_gb_is_refused_in_one_line(tmp_path):
    """A module's run gets the stage figures a config stack's gets: WAVs over
    limits.max_output_gb are refused before a file is written, naming the model."""
    model = nn.ConvTranspose1d(1, 2, 4, stride=2, padding=1)
    with pytest.raises(ConvscopeError) as caught:
        convscope.run(["report=false", "limits.max_output_gb=1e-5"], model=model,
                      audio=np.zeros(16000, np.float32), sample_rate=16000,
                      out_dir=tmp_path / "run")
    message = str(caught.value)
    assert "\n" not in message and re.match(
        r"^model: the WAVs would take ~\d+ kB on disk, more than limits\.max_output_gb=1e-05",
        message), message
    assert not (tmp_path / "run" / "audio").exists()  # refused before a WAV is written
    assert not (tmp_path / "run" / "shapes.json").exists()


def test_weights_too_big_to_build_are_refused_before_the_build(tmp_path):
    """The forward's estimate needs the built stack; a kernel_size typo (10**11 taps: 800 GB of
    weights) must not be allocated to find out: refused from the plans, naming the layer."""
    from convscope.pipeline.single import run

    layers = seed_example(1)
    layers[0] = replace(layers[0], kernel_size=10 ** 11, padding=0)
    with pytest.raises(ConvscopeError, match=r"^model\.layers\.0: the stack's weights alone "
                                             r"would take ~800 GB, more than the memory limit"):
        run(config(*layers), tmp_path / "run", REPO)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.*"))
