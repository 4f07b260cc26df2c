"""Generator blocks in a config stack (Sequential, Residual, Parallel, Snake, SnakeBeta,
AntiAliasedActivation, weight_norm): planned with nested error keys, built deterministically,
described without a forward pass, and streamed exactly. Oracles: torch's own shapes and ops,
describe()'s hooks, the Snake formulas, and BigVGAN's resamplers re-implemented here."""

from __future__ import annotations

import dataclasses
import json
import math
import random

import numpy as np
import pytest
import scipy.signal
import soundfile
import torch
import torch.nn.functional as F

import convscope
from convscope.config.schema import (
    AudioConfig,
    DataConfig,
    LayerConfig,
    ModelConfig,
    RunConfig,
    StreamConfig,
)
from convscope.errors import ConvscopeError
from convscope.pipeline import preflight as preflight_module
from convscope.pipeline.single import run
from convscope.stack.blocks import KaiserDownsample, KaiserUpsample, kaiser_sinc_filter
from convscope.stack.build import build_stack
from convscope.stack.config_rows import config_rows
from convscope.stack.layer_formulas import layer_length
from convscope.stack.plan import leaf_plans, plan_stack
from convscope.stack.streaming import unsupported_reason
from tests.helpers import REPO, run_script
from tests.test_streaming import assert_equal_streams, one_shot_and_streamed

L = LayerConfig


def conv(out: int, k: int = 3, **kw) -> LayerConfig:
    return L(type="Conv1d", out_channels=out, kernel_size=k, padding=kw.pop("padding", k // 2),
             **kw)


# HiFi-GAN / BigVGAN in miniature: a conv, an upsampler, an MRF of two residual branches with
# anti-aliased Snake activations, a conv back to one channel.
GENERATOR = [
    conv(4, 7),
    L(type="ConvTranspose1d", out_channels=4, kernel_size=4, stride=2, padding=1,
      weight_norm=True),
    L(type="Parallel", reduce="mean", layers=[
        L(type="Residual", layers=[L(type="AntiAliasedActivation"), conv(4, 3, dilation=1)]),
        L(type="Residual", layers=[L(type="Snake", logscale=True), conv(4, 5, padding=4,
                                                                         dilation=2)]),
    ]),
    L(type="SnakeBeta", alpha=0.5),
    conv(1, 7, weight_norm=True),
]


# --- planning errors name the nested key -----------------------------------------------------

BAD_STACKS = [
    ([conv(4), L(type="Residual", layers=[conv(4, 0)])],
     ["model.layers.1.layers.0.kernel_size", "got 0"]),
    ([conv(4), L(type="Residual", layers=[conv(8)])],
     ["model.layers.1:", "Residual", "[1, 4, 50]", "[1, 8, 50]"]),
    ([conv(4), L(type="Parallel", reduce="max", layers=[conv(4)])],
     ["model.layers.1.reduce", "'max'", "mean, sum"]),
    ([conv(4), L(type="Parallel", layers=[conv(4), conv(2)])],
     ["model.layers.1.layers.1:", "[1, 2, 50]", "model.layers.1.layers.0", "[1, 4, 50]"]),
    ([L(type="Snake", kernel_size=3)], ["model.layers.0.kernel_size", "Snake takes no"]),
    ([L(type="Residual", reduce="sum", layers=[conv(1)])], ["model.layers.0.reduce"]),
    ([L(type="AntiAliasedActivation", activation="ReLU")],
     ["model.layers.0.activation", "Snake or SnakeBeta", "'ReLU'"]),
    ([L(type="SnakeBeta", alpha=0.0)], ["model.layers.0.alpha", "> 0"]),
    ([L(type="Sequential", layers=[])], ["model.layers.0.layers", "non-empty"]),
    ([conv(4), L(type="Parallel", layers=[L(type="Residual", layers=[
        L(type="Tanh"), L(type="Conv1d", in_channels=3, out_channels=4, kernel_size=1)])])],
     ["model.layers.1.layers.0.layers.1.in_channels", "3", "4"]),
    ([L(type="Upsample", scale_factor=2, weight_norm=True)],
     ["model.layers.0.weight_norm", "Upsample takes no"]),
    ([L(type="Sequential", layers=[L(type="Tanh"), L(type="Resnet")])],
     ["model.layers.0.layers.1.type", "'Resnet'"]),
    ([L(type="Sequential", layers=[conv(2, 9, padding=0, stride=1)])],
     ["model.layers.0.layers.0", "output length"]),
]


@pytest.mark.parametrize("specs,expected", BAD_STACKS)
def test_planning_errors_name_the_nested_key(specs, expected):
    with pytest.raises(ConvscopeError) as error:
        plan_stack(specs, (1, 1, 50) if specs[0].type != "Sequential" else (1, 1, 5))
    for text in expected:
        assert text in str(error.value), (text, str(error.value))


def test_cli_names_the_nested_key_in_one_error_line(tmp_path):
    out = tmp_path / "run"
    layers = ("[{type:Conv1d,out_channels:4,kernel_size:3,padding:1},"
              "{type:Residual,layers:[{type:Snake},{type:Conv1d,out_channels:4,kernel_size:0}]}]")
    result = run_script("run.py", f"model.layers={layers}", f"hydra.run.dir={out}")
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: model.layers.1.layers.1.kernel_size")
    assert not (out / "shapes.json").exists()


# --- plans against torch: shapes, rows, builds -----------------------------------------------

def random_layer(rng: random.Random, channels: int, depth: int) -> tuple[LayerConfig, int]:
    """One random layer or block taking `channels` in; returns it and its output channels."""
    kinds = ["conv", "convT", "act", "snake"] + (["res", "par", "seq", "aa"] if depth < 2 else [])
    kind = rng.choice(kinds)
    if kind == "conv":
        out, k, d = rng.choice([1, 2, 3]), rng.randint(1, 5), rng.randint(1, 2)
        return L(type="Conv1d", out_channels=out, kernel_size=k, dilation=d,
                 padding=rng.choice([0, d * (k - 1) // 2, "same"]),
                 padding_mode=rng.choice(["zeros", "replicate"]),
                 weight_norm=rng.random() < 0.4), out
    if kind == "convT":
        out, s = rng.choice([1, 2, 3]), rng.randint(1, 3)
        return L(type="ConvTranspose1d", out_channels=out, kernel_size=2 * s, stride=s,
                 padding=s // 2, weight_norm=rng.random() < 0.4), out
    if kind == "act":
        return L(type=rng.choice(["Tanh", "LeakyReLU"])), channels
    if kind == "snake":
        return L(type=rng.choice(["Snake", "SnakeBeta"]), alpha=rng.choice([None, 0.5, 2.0]),
                 logscale=rng.choice([None, True])), channels
    if kind == "aa":
        return L(type="AntiAliasedActivation", activation=rng.choice([None, "Snake"])), channels
    if kind == "par":
        # branches keep the length: same-padded convs and pointwise layers
        out = rng.choice([channels, 2])
        branches = [L(type="Sequential", layers=[
            L(type="Conv1d", out_channels=out, kernel_size=rng.choice([1, 3, 5]), padding="same",
              dilation=rng.randint(1, 3)), L(type="SnakeBeta")]) for _ in range(rng.randint(1, 3))]
        return L(type="Parallel", reduce=rng.choice(["mean", "sum"]), layers=branches), out
    if kind == "res":
        inner = [L(type="Snake"), L(type="Conv1d", out_channels=channels, kernel_size=3,
                                     padding="same", dilation=rng.randint(1, 3))]
        return L(type="Residual", layers=inner), channels
    layers, c = [], channels
    for _ in range(rng.randint(1, 3)):
        layer, c = random_layer(rng, c, depth + 1)
        layers.append(layer)
    return L(type="Sequential", layers=layers), c


def random_stacks(seed: int, count: int):
    rng = random.Random(seed)
    made = 0
    while made < count:
        channels, length = rng.choice([1, 2]), rng.randint(3, 40)
        specs, c = [], channels
        for _ in range(rng.randint(1, 4)):
            layer, c = random_layer(rng, c, 0)
            specs.append(layer)
        try:
            plans = plan_stack(specs, (1, channels, length))
        except ConvscopeError:  # e.g. a conv that shrinks a short input to nothing
            continue
        made += 1
        yield specs, plans


@pytest.mark.parametrize("seed", range(3))
def test_planned_shapes_and_rows_are_what_torch_and_describe_give(seed):
    for specs, plans in random_stacks(seed, 15):
        stack = build_stack(plans, seed)
        x = torch.randn(plans[0].input_shape)
        with torch.no_grad():
            for plan, module in zip(plans, stack):
                x = module(x)
                assert tuple(x.shape) == plan.output_shape, plan.key
        rows = config_rows(plans, stack)
        described = convscope.describe(stack, plans[0].input_shape).rows
        assert [row.key for row in rows] == [leaf.key for leaf in leaf_plans(plans)]
        assert [dataclasses.replace(row, key="").as_json() for row in rows] == \
            [row.as_json() for row in described]
        assert all("measured" not in row.formula for row in rows)


def test_generator_rows_name_the_config_key_of_every_call():
    plans = plan_stack(GENERATOR, (1, 1, 30))
    rows = config_rows(plans, build_stack(plans, 0))
    names = {row.name: row for row in rows}
    aa = names["2.branches.0.inner.0.up"]
    assert aa.key == "model.layers.2.layers.0.layers.0" and aa.type == "KaiserUpsample"
    assert aa.output_shape == [1, 4, 120] and "= 120" in aa.formula
    assert names["2.branches.1.inner.1"].key == "model.layers.2.layers.1.layers.1"
    assert rows[-1].as_json()["key"] == "model.layers.4"
    assert "key" not in dataclasses.replace(rows[0], key="").as_json()
    assert plans[2].stride_ratio == (1, 1) and plans[1].stride_ratio == (2, 1)
    assert plans[2].key == "model.layers.2"
    assert plans[2].children[1].key == "model.layers.2.layers.1"


def test_sequential_block_scales_the_rate_by_its_sub_stack():
    plans = plan_stack([L(type="Sequential", layers=[
        L(type="ConvTranspose1d", out_channels=1, kernel_size=6, stride=3, padding=0),
        L(type="Conv1d", out_channels=1, kernel_size=2, stride=2)])], (1, 1, 10))
    assert plans[0].stride_ratio == (3, 2)


def test_builds_are_deterministic_and_draw_in_plan_order():
    plans = plan_stack(GENERATOR, (1, 1, 30))
    one, two = build_stack(plans, 7).state_dict(), build_stack(plans, 7).state_dict()
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)
    other = build_stack(plans, 8).state_dict()
    assert not torch.equal(one["0.weight"], other["0.weight"])
    # The same convs drawn by hand, depth first: weight_norm and the blocks draw nothing extra
    torch.manual_seed(7)
    drawn = [torch.nn.Conv1d(1, 4, 7, padding=3), torch.nn.ConvTranspose1d(4, 4, 4, 2, 1),
             torch.nn.Conv1d(4, 4, 3, padding=1), torch.nn.Conv1d(4, 4, 5, padding=4, dilation=2),
             torch.nn.Conv1d(4, 1, 7, padding=3)]
    stack = build_stack(plans, 7)
    built = [stack[0], stack[1], stack[2].branches[0].inner[1], stack[2].branches[1].inner[1],
             stack[4]]
    with torch.no_grad():
        for mine, theirs in zip(built, drawn):
            torch.testing.assert_close(mine.weight, theirs.weight, atol=1e-6, rtol=1e-6)
            assert torch.equal(mine.bias, theirs.bias)
    assert "1.parametrizations.weight.original0" in one  # weight_norm's g and v are saved


def test_inits_apply_to_nested_convs_as_to_top_level_ones():
    sinc = dict(type="ConvTranspose1d", out_channels=1, kernel_size=9, stride=2, padding=4,
                init="sinc")
    top = build_stack(plan_stack([L(**sinc)], (1, 1, 20)), 0)[0]
    nested = build_stack(plan_stack([L(type="Sequential", layers=[L(**sinc, weight_norm=True)])],
                                    (1, 1, 20)), 3)[0][0]
    with torch.no_grad():
        torch.testing.assert_close(nested.weight, top.weight)


# --- block numbers against torch and the formulas -------------------------------------------

@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_parallel_and_residual_compute_what_their_formulas_say(reduce):
    specs = [L(type="Parallel", reduce=reduce, layers=[conv(3, 3), conv(3, 5)]),
             L(type="Residual", layers=[conv(3, 3, dilation=2, padding=2)])]
    plans = plan_stack(specs, (1, 2, 25))
    stack = build_stack(plans, 1)
    x = torch.randn(1, 2, 25)
    a, b = stack[0].branches
    res = stack[1].inner[0]
    with torch.no_grad():
        branches = F.conv1d(x, a.weight, a.bias, padding=1) + F.conv1d(x, b.weight, b.bias,
                                                                       padding=2)
        expected = branches / 2 if reduce == "mean" else branches
        expected = expected + F.conv1d(expected, res.weight, res.bias, padding=2, dilation=2)
        torch.testing.assert_close(stack(x), expected)


def test_snake_and_snake_beta_follow_their_formulas():
    x = np.random.default_rng(0).standard_normal((1, 3, 40)).astype(np.float32)
    alpha = np.array([0.5, 1.0, 3.0], dtype=np.float32)[None, :, None]
    beta = np.array([2.0, 0.25, 1.0], dtype=np.float32)[None, :, None]
    for logscale in (False, True):
        plans = plan_stack([L(type="Snake", alpha=0.5, logscale=logscale),
                            L(type="SnakeBeta", logscale=logscale)], (1, 3, 40))
        snake, snake_beta = build_stack(plans, 0)
        with torch.no_grad():
            stored = (lambda v: np.log(v)) if logscale else (lambda v: v)
            np.testing.assert_allclose(snake.alpha.numpy(), np.full(3, stored(0.5)), rtol=1e-6)
            snake.alpha.copy_(torch.as_tensor(stored(alpha.ravel())))
            snake_beta.alpha.copy_(torch.as_tensor(stored(alpha.ravel())))
            snake_beta.beta.copy_(torch.as_tensor(stored(beta.ravel())))
            got_snake = snake(torch.as_tensor(x)).numpy()
            got_beta = snake_beta(torch.as_tensor(x)).numpy()
        np.testing.assert_allclose(got_snake, x + np.sin(alpha * x) ** 2 / alpha, rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(got_beta, x + np.sin(alpha * x) ** 2 / beta, rtol=1e-5,
                                   atol=1e-6)


# BigVGAN's alias_free_activation/torch (filter.py, resample.py), re-implemented from the
# published code, with scipy's Kaiser window and beta formula.

def reference_filter(cutoff: float, half_width: float, kernel_size: int) -> np.ndarray:
    half = kernel_size // 2
    attenuation = scipy.signal.kaiser_atten(half, 4 * half_width)  # 2.285 (N-1) pi dw + 7.95
    window = scipy.signal.windows.kaiser(kernel_size, scipy.signal.kaiser_beta(attenuation))
    if kernel_size % 2 == 0:
        time = np.arange(-half, half) + 0.5
    else:
        time = np.arange(kernel_size) - half
    taps = 2 * cutoff * window * np.sinc(2 * cutoff * time)
    return taps / taps.sum()


def reference_upsample(x: torch.Tensor, ratio: int, kernel_size: int) -> torch.Tensor:
    taps = torch.as_tensor(reference_filter(0.5 / ratio, 0.6 / ratio, kernel_size),
                           dtype=torch.float32).view(1, 1, -1)
    pad = kernel_size // ratio - 1
    pad_left = pad * ratio + (kernel_size - ratio) // 2
    pad_right = pad * ratio + (kernel_size - ratio + 1) // 2
    channels = x.shape[1]
    y = F.pad(x, (pad, pad), mode="replicate")
    y = ratio * F.conv_transpose1d(y, taps.expand(channels, -1, -1), stride=ratio,
                                   groups=channels)
    return y[..., pad_left:-pad_right]


def reference_downsample(x: torch.Tensor, ratio: int, kernel_size: int) -> torch.Tensor:
    taps = torch.as_tensor(reference_filter(0.5 / ratio, 0.6 / ratio, kernel_size),
                           dtype=torch.float32).view(1, 1, -1)
    even = kernel_size % 2 == 0
    channels = x.shape[1]
    y = F.pad(x, (kernel_size // 2 - int(even), kernel_size // 2), mode="replicate")
    return F.conv1d(y, taps.expand(channels, -1, -1), stride=ratio, groups=channels)


@pytest.mark.parametrize("ratio,kernel_size", [(2, 12), (3, 18), (2, 11)])
def test_kaiser_filter_is_bigvgans_with_scipys_window(ratio, kernel_size):
    got = kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size).numpy()
    np.testing.assert_allclose(got, reference_filter(0.5 / ratio, 0.6 / ratio, kernel_size),
                               atol=1e-7)


@pytest.mark.parametrize("ratio,kernel_size", [(2, 12), (3, 18), (2, 11)])
def test_kaiser_resamplers_match_bigvgan_and_their_length_formulas(ratio, kernel_size):
    up, down = KaiserUpsample(ratio, kernel_size), KaiserDownsample(ratio, kernel_size)
    generator = torch.Generator().manual_seed(ratio * kernel_size)
    for length in (1, 2, 3, 7, 20, 33):
        x = torch.randn(1, 2, length, generator=generator)
        with torch.no_grad():
            ups, downs = up(x), down(x)
        torch.testing.assert_close(ups, reference_upsample(x, ratio, kernel_size))
        torch.testing.assert_close(downs, reference_downsample(x, ratio, kernel_size))
        assert layer_length(up, length)[0] == ups.shape[-1]
        assert layer_length(down, length)[0] == downs.shape[-1] == math.ceil(length / ratio)


def test_anti_aliased_activation_keeps_every_length():
    for length in range(1, 30):
        plans = plan_stack([L(type="AntiAliasedActivation")], (1, 2, length))
        with torch.no_grad():
            y = build_stack(plans, 0)(torch.randn(1, 2, length))
        assert y.shape[-1] == plans[0].output_shape[-1] == length


# --- streaming --------------------------------------------------------------------------------

def test_generator_blocks_stream_exactly():
    assert unsupported_reason(plan_stack(GENERATOR, (1, 1, 100))) is None
    for length, block, input_block in [(300, 37, 50), (61, 4, 7), (3, 1000, 2)]:
        assert_equal_streams(*one_shot_and_streamed(GENERATOR, length, block=block,
                                                    input_block=input_block))


def test_random_block_stacks_stream_exactly():
    rng = random.Random(11)
    for index, (specs, plans) in enumerate(random_stacks(3, 25)):
        assert unsupported_reason(plans) is None
        _, channels, length = plans[0].input_shape
        assert_equal_streams(*one_shot_and_streamed(
            specs, length, channels, block=rng.randint(1, 20), input_block=rng.randint(1, 15),
            seed=index))


def test_streamed_generator_run_writes_what_the_one_shot_run_computes(tmp_path):
    data = DataConfig(path="data/sample.wav", start=0.5, end=0.9, sr=8000)
    outputs = {}
    for mode in ("true", "false"):
        cfg = RunConfig(data=data, model=ModelConfig(layers=GENERATOR), report=False,
                        stream=StreamConfig(enabled=mode, block_seconds=0.03),
                        audio=AudioConfig(subtype="FLOAT"))
        cfg.plots.enabled = False
        result = run(cfg, tmp_path / mode, base_dir=REPO)
        outputs[mode] = result
    assert "stream" in outputs["true"].shapes and "stream" not in outputs["false"].shapes
    assert outputs["true"].shapes["layers"] == outputs["false"].shapes["layers"]
    expected = outputs["false"].traces[-1].output[0, 0]
    got, _ = soundfile.read(str(tmp_path / "true/audio/layer4_ch0.wav"), dtype="float32")
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_one_shot_fallback_over_half_the_memory_is_refused_before_writing(tmp_path, monkeypatch):
    # pipeline.preflight's budget: limits.memory_fraction (0.5) of this much RAM
    monkeypatch.setattr(preflight_module, "machine_memory_bytes", lambda: 1000)
    layers = [L(type="Conv1d", in_channels=1, out_channels=1, kernel_size=3, padding=1,
                padding_mode="circular")]
    cfg = RunConfig(model=ModelConfig(layers=layers), report=False,
                    stream=StreamConfig(enabled="true"))
    with pytest.raises(ConvscopeError, match=r"the run needs.*cannot stream.*circular.*data\.end"):
        run(cfg, tmp_path / "out", base_dir=REPO)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.*"))


# --- the CLI, end to end ----------------------------------------------------------------------

def test_cli_runs_a_stack_with_residual_parallel_and_anti_aliased_blocks(tmp_path):
    layers = ("[{type:Conv1d,out_channels:4,kernel_size:7,padding:3},"
              "{type:ConvTranspose1d,out_channels:4,kernel_size:4,stride:2,padding:1,"
              "weight_norm:true},"
              "{type:Parallel,reduce:sum,layers:["
              "{type:Residual,layers:[{type:AntiAliasedActivation},"
              "{type:Conv1d,out_channels:4,kernel_size:3,padding:1}]},"
              "{type:Residual,layers:[{type:Snake,logscale:true},"
              "{type:Conv1d,out_channels:4,kernel_size:5,padding:4,dilation:2}]}]},"
              "{type:Conv1d,out_channels:1,kernel_size:7,padding:3},{type:Tanh}]")
    out = tmp_path / "run"
    result = run_script("run.py", f"model.layers={layers}", "data.end=2.1", "plots.enabled=false",
                        "report=false", f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "shapes.json").read_text())
    specs = [L(type="Conv1d", out_channels=4, kernel_size=7, padding=3),
             L(type="ConvTranspose1d", out_channels=4, kernel_size=4, stride=2, padding=1,
               weight_norm=True),
             L(type="Parallel", reduce="sum", layers=[
                 L(type="Residual", layers=[L(type="AntiAliasedActivation"), conv(4, 3)]),
                 L(type="Residual", layers=[L(type="Snake", logscale=True),
                                            conv(4, 5, padding=4, dilation=2)])]),
             conv(1, 7), L(type="Tanh")]
    shape = tuple(doc["input"]["shape"])
    stack = build_stack(plan_stack(specs, shape), 0)
    keys = [layer.pop("key") for layer in doc["layers"]]
    described = convscope.describe(stack, shape, sample_rate=doc["input"]["sample_rate"])
    assert doc["layers"] == described.to_dict()["layers"]
    assert keys[4] == "model.layers.2.layers.0.layers.0"  # the anti-aliased Kaiser upsample
    assert doc["output"]["shape"] == [1, 1, 2 * shape[-1]]
