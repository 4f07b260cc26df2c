"""Each interpolating init against its definition, and the geometry checks that guard it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from convscope.config.presets import model_preset
from convscope.config.schema import LayerConfig
from convscope.errors import ConvscopeError
from convscope.quality.metrics import image_level_db, snr_db, trim_edges
from convscope.stack.build import build_stack
from convscope.stack.inits import InitSpec, interpolator
from convscope.stack.plan import plan_stack
from convscope.stack.rates import output_sample_rate
from convscope.stack.run_model import run_model


def upsample(layer: dict, x: np.ndarray) -> np.ndarray:
    """Run one configured layer (init applied by build_stack) on mono x; channel 0 out."""
    x = np.asarray(x, dtype=np.float32)[None, None]
    stack = build_stack(plan_stack([LayerConfig(**layer)], x.shape), seed=0)
    with torch.no_grad():
        return stack(torch.as_tensor(x))[0].numpy()


def transposed(k: int, s: int, p: int, op: int = 0, **init) -> dict:
    return dict(type="ConvTranspose1d", in_channels=1, out_channels=1, kernel_size=k, stride=s,
                padding=p, output_padding=op, **init)


@pytest.mark.parametrize("stride", [2, 3, 4])
def test_nearest_repeats_every_sample_like_upsample(stride):
    x = np.random.default_rng(0).standard_normal(50)
    y = upsample(transposed(stride, stride, 0, init="nearest"), x)[0]
    expected = nn.Upsample(scale_factor=stride, mode="nearest")(torch.tensor(x[None, None]))
    np.testing.assert_allclose(y, expected[0, 0].numpy(), atol=1e-6)
    np.testing.assert_array_equal(y, np.repeat(x.astype(np.float32), stride))


@pytest.mark.parametrize("stride", [2, 3])
def test_linear_is_exact_on_a_ramp_away_from_the_end(stride):
    x = np.arange(40, dtype=float)
    k, p = 2 * stride - 1, stride - 1
    y = upsample(transposed(k, stride, p, stride - 1, init="linear"), x)[0]
    assert len(y) == stride * len(x)
    inside = (len(x) - 1) * stride + 1  # after the last sample it interpolates towards 0
    np.testing.assert_allclose(y[:inside], np.arange(inside) / stride, atol=1e-5)


def test_linear_kernel_is_the_triangle():
    np.testing.assert_allclose(interpolator(InitSpec("linear"), 2, 3, 1), [0.5, 1, 0.5])
    np.testing.assert_allclose(interpolator(InitSpec("linear"), 3, 5, 2),
                               [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3])


def test_sinc_preset_passes_a_low_tone_and_rejects_its_image():
    rate, freq = 16000, 3000.0
    x = np.sin(2 * np.pi * freq * np.arange(rate) / rate)
    run = run_model(model_preset("sinc_x2"), x, rate)
    exact = np.sin(2 * np.pi * freq * np.arange(2 * rate) / (2 * rate))
    y = run.outputs[0]
    assert run.output_rate == 32000 and len(y) == 2 * rate
    edge = 1600  # 50 ms: the zero padding beyond the ends, not the kernel, decides the output there
    assert snr_db(trim_edges(y, edge), trim_edges(exact, edge)) > 100
    assert image_level_db(trim_edges(y, edge), 32000, 16000) < -120  # the image at 13 kHz


def test_sinc_at_full_cutoff_passes_input_samples_unchanged():
    kernel = interpolator(InitSpec("sinc", sinc_cutoff=1.0), 2, 33, 16)
    assert kernel[16] == pytest.approx(1.0)
    np.testing.assert_allclose(kernel[16 % 2::2][np.arange(17) != 8], 0, atol=1e-12)
    x = np.random.default_rng(1).standard_normal(64)
    y = upsample(transposed(33, 2, 16, 1, init="sinc", sinc_cutoff=1.0), x)[0]
    np.testing.assert_allclose(y[::2], x, atol=1e-5)


@pytest.mark.parametrize("window", ["kaiser", "hann", "blackman", "rect"])
def test_sinc_dc_gain_is_the_stride(window):
    kernel = interpolator(InitSpec("sinc", sinc_window=window), 2, 101, 50)
    assert kernel.sum() == pytest.approx(2.0, rel=0.02)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_identity_passes_through_transposed_and_plain_convs():
    x = np.random.default_rng(2).standard_normal(30)
    np.testing.assert_allclose(upsample(transposed(3, 1, 1, init="identity"), x)[0], x, atol=1e-6)
    conv = dict(type="Conv1d", in_channels=1, out_channels=1, kernel_size=5, padding=2,
                init="identity")
    np.testing.assert_allclose(upsample(conv, x)[0], x, atol=1e-6)
    np.testing.assert_allclose(upsample({**conv, "kernel_size": 4, "padding": "same"}, x)[0], x,
                               atol=1e-6)


def test_several_channels_average_inputs_and_zero_bias():
    """The reference example's shapes with interpolating inits: every channel is real audio."""
    specs = [LayerConfig(type="ConvTranspose1d", in_channels=1, out_channels=2, kernel_size=3,
                         stride=1, padding=1, init="identity"),
             LayerConfig(type="ConvTranspose1d", in_channels=2, out_channels=3, kernel_size=3,
                         stride=2, padding=1, output_padding=1, init="linear")]
    x = np.arange(20, dtype=np.float32)[None, None]
    stack = build_stack(plan_stack(specs, x.shape), seed=0)
    assert all(float(layer.bias.detach().abs().sum()) == 0 for layer in stack)
    with torch.no_grad():
        y = stack(torch.as_tensor(x))[0].numpy()
    assert y.shape == (3, 40)
    for channel in y:
        np.testing.assert_allclose(channel[:39], np.arange(39) / 2, atol=1e-5)


def test_box_taps_sum_to_the_stride_and_show_the_uneven_overlap():
    y = upsample(transposed(5, 2, 2, 1, init="box", bias=False), np.ones(20))[0]
    # Each tap 2/5; even outputs get 3 taps, odd ones 2 (the first only 2: the input starts there)
    np.testing.assert_allclose(y[:6] / 0.4, [2, 2, 3, 2, 3, 2], atol=1e-5)
    even = upsample(transposed(4, 2, 1, init="box", bias=False), np.ones(20))[0]
    np.testing.assert_allclose(even[1:-1], 1.0, atol=1e-6)


def test_default_layers_keep_their_seeded_weights_when_another_layer_is_initialised():
    plain = [LayerConfig(type="ConvTranspose1d", in_channels=1, out_channels=2, kernel_size=3,
                         stride=1, padding=1),
             LayerConfig(type="ConvTranspose1d", in_channels=2, out_channels=3, kernel_size=5,
                         stride=2, padding=2, output_padding=1)]
    with_init = [plain[0], LayerConfig(**{**vars(plain[1]), "init": "box"})]
    a = build_stack(plan_stack(plain, (1, 1, 100)), seed=0)
    b = build_stack(plan_stack(with_init, (1, 1, 100)), seed=0)
    assert torch.equal(a[0].weight, b[0].weight) and torch.equal(a[0].bias, b[0].bias)
    assert not torch.equal(a[1].weight, b[1].weight)


def test_upsample_layer_plan():
    specs = [LayerConfig(type="Upsample", scale_factor=2, mode="nearest"),
             LayerConfig(type="Conv1d", in_channels=1, out_channels=3, kernel_size=5, padding=2)]
    plans = plan_stack(specs, (1, 1, 16000))
    assert plans[0].output_shape == (1, 1, 32000) and plans[0].stride_ratio == (2, 1)
    assert output_sample_rate(plans, 16000) == 32000
    stack = build_stack(plans, seed=0)
    assert stack(torch.zeros(1, 1, 16000)).shape == (1, 3, 32000)


@pytest.mark.parametrize("layer, key, words", [
    (transposed(3, 2, 1, init="bilinear"), "model.layers.0.init", ["'bilinear'", "sinc"]),
    (transposed(4, 2, 1, init="sinc"), "model.layers.0.init", ["odd kernel_size", "padding=2"]),
    (transposed(5, 2, 1, init="sinc"), "model.layers.0.init", ["padding=(kernel_size-1)/2"]),
    (transposed(3, 2, 0, init="linear"), "model.layers.0.init",
     ["offsets -1..1", "covers 0..2", "kernel_size=3, padding=1, output_padding=1"]),
    (transposed(2, 2, 1, init="nearest"), "model.layers.0.init", ["kernel_size=2, padding=0"]),
    (transposed(3, 2, 1, init="identity"), "model.layers.0.init", ["stride=1"]),
    (dict(type="Conv1d", in_channels=1, out_channels=1, kernel_size=3, padding=1,
          init="linear"), "model.layers.0.init", ["needs a ConvTranspose1d"]),
    (transposed(5, 2, 2, init="sinc", sinc_beta=80.0), "model.layers.0.sinc_beta", ["80"]),
    (transposed(5, 2, 2, init="sinc", sinc_cutoff=0.0), "model.layers.0.sinc_cutoff", ["(0, 1]"]),
    (transposed(5, 2, 2, init="sinc", sinc_window="gauss"), "model.layers.0.sinc_window",
     ["'gauss'", "kaiser"]),
    (transposed(3, 2, 1, init="linear", sinc_beta=8.0), "model.layers.0.sinc_beta",
     ["only init=sinc"]),
    (dict(type="Upsample", scale_factor=0), "model.layers.0.scale_factor", ["0"]),
    (dict(type="Upsample", scale_factor=2, init="linear"), "model.layers.0.init", ["Upsample"]),
])
def test_bad_init_config_names_the_key_and_values(layer, key, words):
    with pytest.raises(ConvscopeError) as error:
        plan_stack([LayerConfig(**layer)], (1, 1, 100))
    message = str(error.value)
    assert message.startswith(key), message
    for word in words:
        assert word in message, message
