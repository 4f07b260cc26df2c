"""plan_stack against torch, its checks (each naming the layer), MACs, seeded builds."""

import random

import pytest
import torch

from convscope.config.schema import LayerConfig
from convscope.errors import ConvscopeError
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack
from convscope.stack.rates import output_sample_rate
from convscope.stack.rows import count_macs

REFERENCE = [
    LayerConfig(type="ConvTranspose1d", in_channels=1, out_channels=2, kernel_size=3, stride=1,
                padding=1),
    LayerConfig(type="ConvTranspose1d", in_channels=2, out_channels=3, kernel_size=5, stride=2,
                padding=2, output_padding=1),
]


def test_reference_plan_shapes_and_rate():
    plans = plan_stack(REFERENCE, (1, 1, 16000))
    assert [p.output_shape for p in plans] == [(1, 2, 16000), (1, 3, 32000)]
    assert plans[1].formula == "L_out = (16000-1)*2 - 2*2 + 1*(5-1) + 1 + 1 = 32000"
    assert output_sample_rate(plans, 16000) == 32000


def random_stack(rng: random.Random) -> tuple[list[LayerConfig], int, int]:
    """A random stack of 1-4 layers (it may shrink the signal to nothing) and an input size."""
    layers, channels = [], rng.choice([1, 2])
    input_channels = channels
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["Conv1d", "ConvTranspose1d", "ConvTranspose1d", "LeakyReLU"])
        if kind == "LeakyReLU":
            layers.append(LayerConfig(type=kind, negative_slope=0.2))
            continue
        groups = rng.choice([1, channels])
        out = groups * rng.randint(1, 3)
        spec = LayerConfig(type=kind, in_channels=channels, out_channels=out,
                           kernel_size=rng.randint(1, 7), stride=rng.randint(1, 4),
                           padding=rng.randint(0, 3), dilation=rng.randint(1, 3), groups=groups,
                           bias=rng.random() < 0.5)
        if kind == "ConvTranspose1d":
            spec.output_padding = rng.randint(0, max(spec.stride, spec.dilation) - 1)
        layers.append(spec)
        channels = out
    return layers, input_channels, rng.randint(1, 40)


@pytest.mark.parametrize("seed", range(150))
def test_plan_matches_torch_on_random_stacks(seed):
    rng = random.Random(seed)
    specs, channels, length = random_stack(rng)
    x = torch.randn(1, channels, length)
    try:
        plans = plan_stack(specs, tuple(x.shape))
    except ConvscopeError as exc:
        # The plan may only refuse what torch also refuses.
        assert "output length" in str(exc)
        with pytest.raises(RuntimeError):
            build_stack(plan_stack_unchecked(specs, x), 0)(x)
        return
    from torch.utils.flop_counter import FlopCounterMode

    stack = build_stack(plans, 0)
    shape = x.shape
    for plan, layer in zip(plans, stack):
        with FlopCounterMode(display=False) as counter:
            x = layer(x)
        assert tuple(x.shape) == plan.output_shape, (plan.key, plan.formula)
        # count_macs is arithmetic (FlopCounterMode costs 2 s of imports): same count as torch's
        assert count_macs(plan) == counter.get_total_flops() // 2, plan.key
    assert tuple(shape) == plans[0].input_shape


def plan_stack_unchecked(specs, x):
    """Build the torch layers without the plan's checks, to see torch fail too."""
    from convscope.stack.plan import LayerPlan

    plans = []
    for i, spec in enumerate(specs):
        kwargs = {k: v for k, v in vars(spec).items() if v is not None and k != "type"}
        plans.append(LayerPlan(i, spec.type, kwargs, (0, 0, 0), (0, 0, 0), "", (1, 1)))
    return plans


BAD = [
    ({"output_padding": 2}, "model.layers.1.output_padding", ["output_padding=2", "stride=2"]),
    ({"in_channels": 5}, "model.layers.1.in_channels", ["5", "2"]),
    ({"groups": 2}, "model.layers.1.groups", ["groups=2", "out_channels=3"]),
    ({"padding_mode": "reflect"}, "model.layers.1.padding_mode", ["zeros", "reflect"]),
    ({"padding": 20000}, "model.layers.1", ["output length", "-7996"]),
    ({"kernel_size": 0}, "model.layers.1.kernel_size", ["0"]),
    ({"type": "Conv2d"}, "model.layers.1.type", ["Conv2d", "ConvTranspose1d"]),
    ({"negative_slope": 0.1}, "model.layers.1.negative_slope", ["ConvTranspose1d"]),
]


@pytest.mark.parametrize("change,key,values", BAD)
def test_bad_layer_names_layer_key_and_values(change, key, values):
    specs = [LayerConfig(**vars(REFERENCE[0])), LayerConfig(**{**vars(REFERENCE[1]), **change})]
    with pytest.raises(ConvscopeError) as info:
        plan_stack(specs, (1, 1, 16000))
    message = str(info.value)
    assert message.startswith(key)
    for value in values:
        assert value in message


def test_conv1d_reflect_padding_larger_than_input_is_refused():
    spec = LayerConfig(type="Conv1d", out_channels=1, kernel_size=3, padding=5,
                       padding_mode="reflect")
    with pytest.raises(ConvscopeError, match="model.layers.0.padding"):
        plan_stack([spec], (1, 1, 4))


@pytest.mark.parametrize("mode, kernel, length", [("reflect", 3, 1), ("reflect", 5, 2),
                                                  ("circular", 7, 2)])
def test_same_padding_that_copies_more_input_than_there_is_is_refused(mode, kernel, length):
    """padding='same' pads (k-1)//2 and k//2: reflect needs more input than either side, circular
    at least as much; torch would raise only in the forward."""
    spec = LayerConfig(type="Conv1d", out_channels=1, kernel_size=kernel, padding="same",
                       padding_mode=mode)
    with pytest.raises(RuntimeError):  # torch's own refusal, which the plan must come before
        torch.nn.Conv1d(1, 1, kernel, padding="same", padding_mode=mode)(torch.zeros(1, 1, length))
    with pytest.raises(ConvscopeError, match=f"model.layers.0.padding: {mode} padding="):
        plan_stack([spec], (1, 1, length))
    plan_stack([spec], (1, 1, kernel))  # long enough: planned


def test_in_channels_defaults_to_previous_out_channels():
    specs = [LayerConfig(type="Conv1d", out_channels=4, kernel_size=3),
             LayerConfig(type="ReLU"), LayerConfig(type="ConvTranspose1d", out_channels=1,
                                                   kernel_size=4, stride=2, padding=1)]
    plans = plan_stack(specs, (1, 1, 100))
    assert plans[2].kwargs["in_channels"] == 4
    assert plans[2].output_shape == (1, 1, 196)


def test_conv1d_same_padding_keeps_length():
    plans = plan_stack([LayerConfig(type="Conv1d", out_channels=2, kernel_size=5,
                                    padding="same")], (1, 1, 37))
    assert plans[0].output_shape == (1, 2, 37)
    assert build_stack(plans, 0)(torch.zeros(1, 1, 37)).shape == (1, 2, 37)


def test_macs_match_formula_and_flop_counter_on_real_tensors():
    from torch.utils.flop_counter import FlopCounterMode

    plans = plan_stack(REFERENCE, (1, 1, 16000))
    # transposed conv: every input sample meets every weight once: N * L_in * C_in * C_out * k
    assert [count_macs(p) for p in plans] == [16000 * 1 * 2 * 3, 16000 * 2 * 3 * 5]
    stack = build_stack(plans, 0)
    with FlopCounterMode(display=False) as counter:
        stack(torch.zeros(1, 1, 16000))
    assert counter.get_total_flops() // 2 == sum(count_macs(p) for p in plans)


def test_build_is_deterministic_per_seed():
    plans = plan_stack(REFERENCE, (1, 1, 100))
    x = torch.randn(1, 1, 100)
    a, b, c = build_stack(plans, 7)(x), build_stack(plans, 7)(x), build_stack(plans, 8)(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_output_rate_divides_by_conv_strides():
    specs = [LayerConfig(type="Conv1d", out_channels=1, kernel_size=4, stride=4),
             LayerConfig(type="ConvTranspose1d", out_channels=1, kernel_size=2, stride=2)]
    assert output_sample_rate(plan_stack(specs, (1, 1, 1000)), 16000) == 8000
