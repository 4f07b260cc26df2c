"""pipeline.run on the bundled sample: shapes.json, WAVs, plots, weights, determinism."""

import json
from dataclasses import replace

import matplotlib.image
import numpy as np
import pytest
import soundfile
import torch

import convscope
from convscope.config.schema import LayerConfig, ModelConfig, RunConfig
from convscope.pipeline.single import run
from convscope.plots.envelopes import minmax_envelope
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack
from tests.helpers import REPO


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    cfg = RunConfig(model=ModelConfig(name="seed_example", layers=[
        LayerConfig(type="ConvTranspose1d", in_channels=1, out_channels=2, kernel_size=3,
                    stride=1, padding=1),
        LayerConfig(type="ConvTranspose1d", in_channels=2, out_channels=3, kernel_size=5,
                    stride=2, padding=2, output_padding=1)]))
    return cfg, run(cfg, out, base_dir=REPO)


def test_shapes_json_follows_the_schema(reference_run):
    _, result = reference_run
    doc = json.loads((result.out_dir / "shapes.json").read_text())
    assert doc["input"] == {"shape": [1, 1, 16000], "sample_rate": 16000,
                            "sample_rate_fraction": "16000",
                            "path": str(REPO / "data/sample.wav"), "start": 2.0, "end": 3.0}
    assert [layer["weight_shape"] for layer in doc["layers"]] == [[1, 2, 3], [2, 3, 5]]
    assert [layer["bias_shape"] for layer in doc["layers"]] == [[2], [3]]
    assert [layer["output_shape"] for layer in doc["layers"]] == [[1, 2, 16000], [1, 3, 32000]]
    assert [layer["params"] for layer in doc["layers"]] == [1 * 2 * 3 + 2, 2 * 3 * 5 + 3]
    assert [layer["macs"] for layer in doc["layers"]] == [16000 * 6, 16000 * 30]
    assert doc["layers"][1]["formula"] == "L_out = (16000-1)*2 - 2*2 + 1*(5-1) + 1 + 1 = 32000"
    assert doc["output"] == {"shape": [1, 3, 32000], "sample_rate": 32000,
                             "sample_rate_fraction": "32000"}
    assert [(layer["sample_rate_in"], layer["sample_rate_out"]) for layer in doc["layers"]] == \
        [(16000, 16000), (16000, 32000)]
    assert doc["audio"]["gain"] <= 1.0


def test_shapes_json_layers_are_what_describe_says(reference_run):
    """One row function for both: the run's rows (from the plan, no extra forward pass) equal
    convscope.describe's on the same stack (from hooks) at the input's rate, key for key, with
    the layer names and exact rates; the run's rows add each layer's config key, which describe()
    has no config for."""
    cfg, result = reference_run
    doc = json.loads((result.out_dir / "shapes.json").read_text())
    stack = build_stack(plan_stack(cfg.model.layers, (1, 1, 16000)), 0)
    assert [layer.pop("key") for layer in doc["layers"]] == ["model.layers.0", "model.layers.1"]
    described = convscope.describe(stack, (1, 1, 16000), sample_rate=16000)
    assert doc["layers"] == described.to_dict()["layers"]
    assert [layer["name"] for layer in doc["layers"]] == ["0", "1"]


def test_the_device_is_logged(tmp_path, reference_run, caplog):
    cfg, _ = reference_run
    quiet = replace(cfg, plots=replace(cfg.plots, enabled=False),
                    audio=replace(cfg.audio, enabled=False), report=False, device="cpu")
    with caplog.at_level("INFO", logger="convscope"):
        run(quiet, tmp_path, base_dir=REPO)
    assert "device: cpu" in caplog.messages


def test_wavs_hold_the_traced_outputs_at_the_right_rates(reference_run):
    _, result = reference_run
    audio = result.out_dir / "audio"
    data, sr = soundfile.read(str(audio / "input.wav"))
    assert sr == 16000 and data.shape == (16000,)
    gain = result.shapes["audio"]["gain"]
    for channel in range(3):
        data, sr = soundfile.read(str(audio / f"layer1_ch{channel}.wav"))
        assert sr == 32000 and data.shape == (32000,)
        expected = result.traces[-1].output[0, channel] * gain
        np.testing.assert_allclose(data, expected, atol=1.5 / 32768)  # 16-bit quantisation


def test_traced_output_equals_torch_on_the_loaded_segment(reference_run):
    cfg, result = reference_run
    state = torch.load(result.out_dir / "weights.pt")
    stack = torch.nn.Sequential(
        torch.nn.ConvTranspose1d(1, 2, 3, stride=1, padding=1),
        torch.nn.ConvTranspose1d(2, 3, 5, stride=2, padding=2, output_padding=1))
    stack.load_state_dict(state)
    with torch.no_grad():
        expected = stack(torch.from_numpy(result.segment.samples[None]))
    np.testing.assert_allclose(result.traces[-1].output, expected.numpy(), atol=1e-6)


def test_plots_exist_and_decode(reference_run):
    _, result = reference_run
    names = sorted(p.name for p in (result.out_dir / "plots").glob("*.png"))
    assert {"layer0_ConvTranspose1d.png", "layer1_ConvTranspose1d.png",
            "spectrogram.png"} <= set(names)
    for name in names:
        image = matplotlib.image.imread(result.out_dir / "plots" / name)
        assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0


def test_no_partial_files_left(reference_run):
    _, result = reference_run
    assert not [p for p in result.out_dir.rglob("*") if ".partial" in p.name]


def test_same_seed_is_bit_identical_and_another_seed_is_not(tmp_path, reference_run):
    cfg, first = reference_run
    cfg.plots.enabled = cfg.audio.enabled = False
    again = run(cfg, tmp_path / "again", base_dir=REPO)
    cfg.seed = 1
    other = run(cfg, tmp_path / "other", base_dir=REPO)
    assert np.array_equal(again.traces[-1].output, first.traces[-1].output)
    assert not np.array_equal(other.traces[-1].output, first.traces[-1].output)


def test_envelope_keeps_every_extreme_within_the_pixel_budget():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(1_000_003)
    env = minmax_envelope(x, 16000, 1200)
    assert len(env.low) <= 1201
    assert env.low.min() == x.min() and env.high.max() == x.max()
    short = minmax_envelope(x[:100], 16000, 1200)
    assert np.array_equal(short.low, x[:100])


def test_shapes_json_cost_is_the_rows_macs_over_the_audio_seconds(reference_run):
    _, result = reference_run
    doc = json.loads((result.out_dir / "shapes.json").read_text())
    cost = doc["cost"]
    assert cost["macs"] == sum(layer["macs"] for layer in doc["layers"])
    assert cost["audio_seconds"] == 32000 / 32000
    assert cost["macs_per_audio_second"] == cost["macs"] / cost["audio_seconds"]
    assert 0 < cost["compute_seconds"] and cost["real_time_factor"] == pytest.approx(
        cost["compute_seconds"] / cost["audio_seconds"])


@pytest.mark.parametrize("macs, text", [(26.4e9, "26.4 GMAC"), (576_000, "576 kMAC"),
                                        (11e6, "11 MMAC"), (12, "12 MAC")])
def test_cost_line_says_macs_in_a_readable_unit(macs, text):
    from convscope.pipeline.cost import RunCost

    cost = RunCost(int(macs * 2), 2.0, 0.5)  # per second of audio: macs
    assert cost.summary().startswith(f"{text} per second of audio; this run: 0.500 s for 2.000 s")
    assert cost.real_time_factor == 0.25
