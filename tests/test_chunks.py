"""The chunk debugger (scripts/chunks.py): naive chunking vs one shot, and the layer it blames.

Oracles: torch's autograd (which stack-input samples an output sample depends on), the transposed
conv's own index arithmetic written out here (output j = i*s - p + t), stack.streaming's rule, and
exactness where a layer reads nothing beyond its chunk.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from matplotlib.image import imread

from convscope.config.convert import register_chunks_schema, register_configs, to_chunks_config
from convscope.config.presets import model_preset
from convscope.config.schema import (
    ChunksConfig,
    DataConfig,
    LayerConfig,
    ModelConfig,
    PlotsConfig,
    RunConfig,
)
from convscope.errors import ConvscopeError
from convscope.chunk_debugger.debug import debug_chunks
from convscope.chunk_debugger.report import report_text
from convscope.chunk_debugger.run import run_chunk_debugger
from convscope.rundir import RunDir
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack
from convscope.stack.streaming import ConvTranspose1dRule
from tests.helpers import REPO, run_script

SAMPLE = DataConfig(path=str(REPO / "data" / "sample.wav"), sr=16000, start=2.0, end=2.5)


def seed_config(**data) -> RunConfig:
    return RunConfig(data=DataConfig(**{**SAMPLE.__dict__, **data}),
                     model=model_preset("seed_example"))


@pytest.fixture(scope="module")
def seed_report():
    return debug_chunks(seed_config(), ChunksConfig(seconds=0.1), REPO)


def transposed_context(k: int, s: int, p: int, d: int = 1) -> tuple[int, int]:
    """Input samples a ConvTranspose1d reads before and after the chunk [A, B) that makes
    outputs [sA, sB): output j gets input i through tap t where j = i*s - p + d*t."""
    a, b = 10 * s, 20 * s  # an interior chunk A=10, B=20
    inputs = [i for j in range(a, b) for t in range(k) for i in [(j + p - d * t) / s]
              if i == int(i)]
    return 10 - int(min(inputs)), int(max(inputs)) - 19


def test_seed_example_differs_first_just_before_the_first_boundary(seed_report):
    boundary = round(0.1 * 32000)  # 0.1 s of output at 32 kHz
    assert seed_report.boundary_samples[0] == boundary
    first = seed_report.overall.first
    # autograd: the first output of chunk 0 that depends on input from chunk 1
    plans = plan_stack(model_preset("seed_example").layers, (1, 1, 2 * 1600))
    stack = build_stack(plans, seed=0)
    x = torch.randn(1, 1, 2 * 1600, requires_grad=True)
    y = stack(x)
    reads_across = []
    for j in range(boundary - 8, boundary):
        (grad,) = torch.autograd.grad(y[0, :, j].sum(), x, retain_graph=True)
        reads_across.append(bool(grad[0, 0, 1600:].abs().sum() > 0))
    first_across = boundary - 8 + reads_across.index(True)
    assert first == first_across
    assert boundary - first == seed_report.affected[0]
    assert seed_report.nearest_boundary(first) == 1


def test_seed_example_names_layer_1_and_its_missing_context(seed_report):
    worst = seed_report.culprits()[0]
    assert worst.index == 1 and worst.label == "ConvTranspose1d k5 s2 p2 op1"
    plans = plan_stack(model_preset("seed_example").layers, (1, 1, 1600))
    for plan, finding in zip(plans, seed_report.layers):
        kw = plan.kwargs
        expected = transposed_context(kw["kernel_size"], kw["stride"], kw["padding"])
        assert (finding.context.left, finding.context.right) == expected
        # what streaming's exact rule reads for the chunk [10, 20) of this layer's input
        s = kw["stride"]
        lo, hi = ConvTranspose1dRule(plan, None).needed_input((10 * s, 20 * s))
        assert (10 - lo, hi - 20) == expected
    assert seed_report.as_json()["worst_layer"] == "model.layers.1"
    # layer 0 is short of context too: the report lists it, after layer 1
    assert [layer.index for layer in seed_report.culprits()] == [1, 0]
    text = report_text(seed_report, "seed_example")
    assert "mostly from model.layers.1 (ConvTranspose1d k5 s2 p2 op1)" in text
    assert "model.layers.0 also contributes" in text


def test_errors_sit_only_where_the_arithmetic_says_a_boundary_reaches(seed_report):
    before, after = seed_report.affected
    diff = seed_report.naive - seed_report.exact
    near = np.zeros(diff.shape[-1], bool)
    for b in seed_report.boundary_samples:
        near[b - before: b + after] = True
    assert np.all(np.abs(diff[:, ~near]) <= seed_report.tolerance)
    assert seed_report.overall.differing <= (before + after) * len(seed_report.boundary_samples)
    per_boundary = [b.error.max_abs for b in seed_report.boundaries]
    assert max(per_boundary) == pytest.approx(seed_report.overall.max_abs)


def test_ablation_a_pointwise_layer_adds_nothing_and_the_other_carries_all():
    layers = [LayerConfig(type="Conv1d", in_channels=1, out_channels=2, kernel_size=1),
              LayerConfig(type="ConvTranspose1d", out_channels=3, kernel_size=5, stride=2,
                          padding=2, output_padding=1)]
    cfg = RunConfig(data=SAMPLE, model=ModelConfig(name="pointwise_then_k5", layers=layers))
    report = debug_chunks(cfg, ChunksConfig(seconds=0.05), REPO)
    pointwise, transposed = report.layers
    assert pointwise.context.left == pointwise.context.right == 0
    assert pointwise.error.differing == 0 and pointwise.error.max_abs <= report.tolerance
    assert transposed.error.rms == pytest.approx(report.overall.rms, rel=1e-5)
    assert transposed.error.first == report.overall.first
    assert [layer.index for layer in report.culprits()] == [1]


def test_a_stack_that_needs_no_context_chunks_exactly():
    # k = s with no padding: every input sample writes its own s outputs, nothing overlaps
    layers = [LayerConfig(type="ConvTranspose1d", in_channels=1, out_channels=4, kernel_size=2,
                          stride=2),
              LayerConfig(type="LeakyReLU", negative_slope=0.2),
              LayerConfig(type="Conv1d", out_channels=2, kernel_size=1)]
    cfg = RunConfig(data=SAMPLE, model=ModelConfig(name="no_context", layers=layers))
    report = debug_chunks(cfg, ChunksConfig(seconds=0.01), REPO)
    assert report.overall.first is None and report.overall.differing == 0
    assert report.affected == (0, 0) and report.stack_context == (0, 0)
    assert report.culprits() == []
    assert all(layer.context.left == layer.context.right == 0 for layer in report.layers)
    assert "no difference" in report_text(report, "no_context")
    assert report.as_json()["worst_layer"] is None


def test_run_dir_has_chunks_json_and_a_png(tmp_path):
    cfg = seed_config()
    cfg.plots = PlotsConfig(dpi=60, width_inches=8)
    run_chunk_debugger(cfg, ChunksConfig(seconds=0.1), tmp_path, REPO)
    files = RunDir(tmp_path)
    doc = json.loads(files.chunks_json.read_text())
    assert set(doc) >= {"chunk", "first_difference", "error", "boundaries", "layers",
                        "culprits", "worst_layer", "stack_context", "affected_output_samples",
                        "lengths", "tolerance", "differs"}
    assert doc["first_difference"]["nearest_boundary"] == 1
    assert set(doc["layers"][1]["context"]) == {"left", "right", "left_stack_input",
                                                "right_stack_input", "given"}
    assert set(doc["error"]) == {"max_abs", "rms", "db", "differing_samples",
                                 "first_differing_sample"}
    assert len(doc["boundaries"]) == doc["chunk"]["count"] - 1 == 4
    image = imread(files.chunk_errors_plot)
    assert image.ndim == 3 and image.shape[1] == 8 * 60


@pytest.mark.parametrize("seconds, says", [
    (0.0, "longer than 0 s"),
    (1e-5, "shorter than one stack-input sample"),
])
def test_chunk_length_errors_name_the_key(seconds, says):
    with pytest.raises(ConvscopeError, match=f"^chunks.seconds: .*{says}"):
        debug_chunks(seed_config(), ChunksConfig(seconds=seconds), REPO)


def test_a_chunk_too_short_for_the_first_layer_says_how_long_it_must_be():
    layers = [LayerConfig(type="Conv1d", in_channels=1, out_channels=1, kernel_size=9)]
    cfg = RunConfig(data=SAMPLE, model=ModelConfig(layers=layers))
    with pytest.raises(ConvscopeError, match=r"^chunks.seconds: .* 3 stack-input samples, too "
                       r"short .*model.layers.0.*needs at least 9 \(chunks.seconds >= 0.0005625"):
        debug_chunks(cfg, ChunksConfig(seconds=0.0002), REPO)


@pytest.fixture
def chunks_schema():
    """The chunks entry point's run_schema, put back to the run schema afterwards (the store is
    global to this test process)."""
    register_chunks_schema()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "configs")):
            yield lambda *overrides: compose("chunks", overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()
        register_configs()


def test_chunks_config_composes_run_yaml_and_types_its_section(chunks_schema):
    run_cfg, chunks = to_chunks_config(chunks_schema())
    assert run_cfg.model.name == "seed_example" and chunks == ChunksConfig()
    run_cfg, chunks = to_chunks_config(chunks_schema(
        "model=hifigan_v3", "model.layers.0.kernel_size=5", "chunks.seconds=0.25"))
    assert run_cfg.data.features == "log_mel" and run_cfg.model.layers[0].kernel_size == 5
    assert math.isclose(chunks.seconds, 0.25)
    with pytest.raises(Exception, match="chunks.bogus"):
        chunks_schema("chunks.bogus=1")


def test_cli_names_layer_1_and_writes_its_files(tmp_path):
    done = run_script("chunks.py", f"hydra.run.dir={tmp_path}", "plots.dpi=50")
    assert done.returncode == 0, done.stderr
    console = done.stdout + done.stderr
    assert "first differing output sample: 3196" in console
    assert "mostly from model.layers.1 (ConvTranspose1d k5 s2 p2 op1)" in console
    files = RunDir(tmp_path)
    assert files.chunks_json.is_file() and files.chunk_errors_plot.is_file()
    assert files.chunks_log.is_file()


def test_cli_bad_chunk_length_is_one_error_line(tmp_path):
    done = run_script("chunks.py", f"hydra.run.dir={tmp_path}", "chunks.seconds=-0.1")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: chunks.seconds: a chunk must be longer than 0 s, got -0.1"]
