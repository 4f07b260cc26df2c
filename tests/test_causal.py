"""Causal layers (`causal: true`, `model.causal=true`): no output sample depends on a later input.

Oracles: torch's own layers (the full padding-0 transposed conv; a symmetric-padded Conv1d),
a perturbation of the input after time t, FlopCounterMode, the gradient probe of
tests/test_receptive.py, and the one-shot forward for the streaming rules.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convscope.config.schema import LayerConfig as L
from convscope.errors import ConvscopeError
from convscope.stack.blocks import Parallel, Residual
from convscope.stack.build import build_stack
from convscope.stack.causal import CausalConv1d, CausalConvTranspose1d
from convscope.stack.config_rows import config_rows
from convscope.stack.layer_formulas import layer_length
from convscope.stack.plan import plan_stack
from convscope.stack.rows import count_macs, layer_type
from convscope.stack.streaming import layer_rules, stream_forward
from tests.helpers import REPO, run_script
from tests.test_receptive import assert_matches_probe


def random_causal_layer(rng: random.Random, transposed: bool, channels: int = 2) -> nn.Module:
    cls = CausalConvTranspose1d if transposed else CausalConv1d
    return cls(channels, rng.randint(1, 3), rng.randint(1, 6), stride=rng.randint(1, 4),
               dilation=rng.randint(1, 3), groups=1)


# --- the modules against torch's own layers -------------------------------------------------------

def test_causal_transposed_conv_is_the_padding_0_conv_cut_to_l_in_times_s():
    """The first L*s samples of the full transposed conv; where the kernel is shorter than the
    stride the samples no tap reaches hold the bias alone (torch's output_padding samples)."""
    rng = random.Random(0)
    short_seen = 0
    for _ in range(60):
        layer = random_causal_layer(rng, transposed=True)
        k, s, d = layer.kernel_size[0], layer.stride[0], layer.dilation[0]
        length = rng.randint(1, 20)
        x = torch.randn(2, 2, length)
        full = F.conv_transpose1d(x, layer.weight, layer.bias, s, 0, 0, 1, d)
        got = layer(x)
        assert got.shape[-1] == length * s
        kept = min(full.shape[-1], length * s)
        torch.testing.assert_close(got[..., :kept], full[..., :kept])
        if d * (k - 1) + 1 < s:
            short_seen += 1
            tail = got[..., kept:]
            assert tail.shape[-1] == s - d * (k - 1) - 1
            torch.testing.assert_close(tail, layer.bias.view(1, -1, 1).expand_as(tail))
    assert short_seen > 3


def test_causal_conv1d_is_the_left_part_of_a_symmetric_padded_conv():
    """torch's Conv1d with padding d*(k-1) on both sides reads the same inputs for its first
    ceil(L/s) outputs: the causal layer is that, without the right half of the padding."""
    rng = random.Random(1)
    for _ in range(40):
        layer = random_causal_layer(rng, transposed=False)
        k, s, d = layer.kernel_size[0], layer.stride[0], layer.dilation[0]
        length = rng.randint(1, 30)
        x = torch.randn(1, 2, length)
        reference = F.conv1d(x, layer.weight, layer.bias, s, d * (k - 1), d)
        got = layer(x)
        assert got.shape[-1] == -(-length // s)
        torch.testing.assert_close(got, reference[..., :got.shape[-1]])


def test_causal_layers_refuse_padding_of_their_own():
    with pytest.raises(ValueError, match="padding must be 0"):
        CausalConv1d(1, 1, 3, padding=1)
    with pytest.raises(ValueError, match="output_padding must be 0"):
        CausalConvTranspose1d(1, 1, 3, stride=2, output_padding=1)


def test_layer_type_repr_and_weight_norm():
    layer = torch.nn.utils.parametrizations.weight_norm(CausalConvTranspose1d(2, 3, 4, stride=2))
    assert layer_type(layer) == "CausalConvTranspose1d"
    assert layer_type(CausalConv1d(1, 1, 3)) == "CausalConv1d"
    assert "causal=True" in repr(CausalConv1d(1, 1, 3))
    assert set(layer.state_dict()) == set(torch.nn.utils.parametrizations.weight_norm(
        nn.ConvTranspose1d(2, 3, 4, stride=2)).state_dict())


# --- formulas, MACs, weights ----------------------------------------------------------------------

def test_formulas_and_macs_equal_torch_and_flop_counter_mode():
    from torch.utils.flop_counter import FlopCounterMode

    rng = random.Random(2)
    for _ in range(30):
        kind = rng.choice(["Conv1d", "ConvTranspose1d"])
        spec = L(type=kind, in_channels=2, out_channels=rng.randint(1, 3),
                 kernel_size=rng.randint(1, 6), stride=rng.randint(1, 4),
                 dilation=rng.randint(1, 3), causal=True)
        plan = plan_stack([spec], (1, 2, rng.randint(1, 40)))[0]
        module = build_stack([plan], 0)[0]
        x = torch.randn(plan.input_shape)
        with FlopCounterMode(display=False) as counter:
            y = module(x)
        assert tuple(y.shape) == plan.output_shape
        assert layer_length(module, x.shape[-1]) == (y.shape[-1], plan.formula)
        assert plan.formula.endswith(f"= {y.shape[-1]}") or f"= {y.shape[-1]} (" in plan.formula
        assert count_macs(plan) == counter.get_total_flops() // 2
        assert config_rows([plan], nn.Sequential(module))[0].macs == count_macs(plan)


def test_same_seed_same_weights_as_the_centred_stack_nested_too():
    specs = [L(type="Conv1d", in_channels=1, out_channels=4, kernel_size=7, padding=3,
               weight_norm=True),
             L(type="Parallel", layers=[
                 L(type="Residual", layers=[L(type="Conv1d", out_channels=4, kernel_size=3,
                                              padding=d, dilation=d)]) for d in (1, 3)]),
             L(type="ConvTranspose1d", out_channels=2, kernel_size=8, stride=4, padding=2)]
    centred = build_stack(plan_stack(specs, (1, 1, 50)), 3)
    causal_plans = plan_stack(specs, (1, 1, 50), causal=True)
    causal = build_stack(causal_plans, 3)
    assert [type(m).__name__ for m in causal.modules() if isinstance(m, (nn.Conv1d,
            nn.ConvTranspose1d))] == ["ParametrizedCausalConv1d", "CausalConv1d",
                                      "CausalConv1d", "CausalConvTranspose1d"]
    one, two = centred.state_dict(), causal.state_dict()
    assert list(one) == list(two)
    assert all(torch.equal(one[key], two[key]) for key in one)
    # aligned paddings are replaced, so the causal stack keeps every shape
    assert [p.output_shape for p in causal_plans] == \
        [p.output_shape for p in plan_stack(specs, (1, 1, 50))]


def test_a_layer_can_opt_out_of_model_causal():
    specs = [L(type="Conv1d", in_channels=1, out_channels=1, kernel_size=3, padding=1,
               causal=False),
             L(type="Conv1d", out_channels=1, kernel_size=3, padding=1)]
    plans = plan_stack(specs, (1, 1, 10), causal=True)
    assert [p.causal for p in plans] == [False, True]
    rows = config_rows(plans, build_stack(plans, 0))
    assert [r.type for r in rows] == ["Conv1d", "CausalConv1d"]
    assert [r.lookahead for r in rows] == [1, 1]  # layer 0's lookahead passes through


# --- random causal stacks: perturbation, receptive field, streaming -------------------------------

def random_causal_specs(rng: random.Random, channels: int = 2) -> list[L]:
    def conv(transposed: bool, stride: bool = True) -> L:
        return L(type="ConvTranspose1d" if transposed else "Conv1d", out_channels=channels,
                 kernel_size=rng.randint(1, 6), stride=rng.randint(1, 3) if stride else 1,
                 dilation=rng.randint(1, 2))

    specs = [L(type="Conv1d", in_channels=1, out_channels=channels, kernel_size=rng.randint(1, 5))]
    for _ in range(rng.randint(2, 5)):
        kind = rng.choice(["conv", "transposed", "act", "residual", "parallel", "upsample"])
        if kind == "conv":
            specs.append(conv(False))
        elif kind == "transposed":
            specs.append(conv(True))
        elif kind == "act":
            specs.append(L(type="LeakyReLU", negative_slope=0.1))
        elif kind == "residual":
            specs.append(L(type="Residual", layers=[L(type="LeakyReLU"), conv(False, False)]))
        elif kind == "parallel":  # branches of one rate: stride s up then s down, or none
            s = rng.randint(1, 3)
            specs.append(L(type="Parallel", reduce=rng.choice(["mean", "sum"]), layers=[
                conv(False, False),
                L(type="Sequential", layers=[
                    L(type="ConvTranspose1d", out_channels=channels, kernel_size=rng.randint(1, 5),
                      stride=s),
                    L(type="Conv1d", out_channels=channels, kernel_size=rng.randint(1, 5),
                      stride=s)])]))
        else:
            specs.append(L(type="Upsample", scale_factor=rng.randint(2, 3), mode="nearest"))
    return specs


def rate_factor(plans) -> Fraction:
    factor = Fraction(1)
    for plan in plans:
        factor *= Fraction(*plan.stride_ratio)
    return factor


@pytest.mark.parametrize("seed", range(8))
def test_perturbing_after_t_leaves_every_earlier_output_unchanged(seed):
    """Output j of the stack (rate factor F over the input) sits at time j / F: every output
    before time t is unchanged when the input changes from t on. The same stack built centred
    (no causal) does change some of them: the check can fail."""
    rng = random.Random(seed)
    specs = random_causal_specs(rng)
    length = 120
    plans = plan_stack(specs, (1, 1, length), causal=True)
    stack = build_stack(plans, seed).double()
    factor = rate_factor(plans)
    x = torch.randn(1, 1, length, dtype=torch.float64)
    for t in (1, rng.randint(2, length - 2), length - 1):
        bumped = x.clone()
        bumped[..., t:] += torch.randn(length - t, dtype=torch.float64) + 3
        with torch.no_grad():
            before, after = stack(x), stack(bumped)
        past = torch.tensor([Fraction(j) / factor < t for j in range(before.shape[-1])])
        assert past.any()
        torch.testing.assert_close(after[..., past], before[..., past], rtol=0, atol=0)
        if not past.all():
            assert not torch.equal(after[..., ~past], before[..., ~past])
    rows = config_rows(plans, stack)
    assert {r.lookahead for r in rows} == {0}
    # the check sees a lookahead of one sample: the same stack fed the input one sample early
    # (t - 1 an output's time: an output at time t - 1 now reads input t)
    t = 1 + factor.denominator * (length // 2 // factor.denominator)
    bumped = x.clone()
    bumped[..., t:] += 1
    with torch.no_grad():
        before, after = stack(x[..., 1:]), stack(bumped[..., 1:])
    past = torch.tensor([Fraction(j) / factor < t for j in range(before.shape[-1])])
    assert not torch.equal(after[..., past], before[..., past])


def to_modules(rng: random.Random, channels: int = 2, depth: int = 0) -> nn.Sequential:
    """A random causal stack as plain modules, for the receptive-field probe."""
    layers: list[nn.Module] = []
    for _ in range(rng.randint(2, 4)):
        kind = rng.choice(["conv", "transposed", "act", "upsample"] +
                          (["residual", "parallel"] if depth == 0 else []))
        if kind == "conv":
            layers.append(CausalConv1d(channels, channels, rng.randint(1, 5),
                                       stride=rng.randint(1, 2), dilation=rng.randint(1, 2)))
        elif kind == "transposed":
            layers.append(CausalConvTranspose1d(channels, channels, rng.randint(1, 5),
                                                stride=rng.randint(1, 3),
                                                dilation=rng.randint(1, 2)))
        elif kind == "act":
            layers.append(nn.LeakyReLU(0.1))
        elif kind == "upsample":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
        elif kind == "residual":
            layers.append(Residual(nn.Sequential(nn.LeakyReLU(0.1), CausalConv1d(
                channels, channels, rng.randint(1, 4), dilation=rng.randint(1, 3)))))
        else:
            layers.append(Parallel([CausalConv1d(channels, channels, rng.randint(1, 4)),
                                    CausalConv1d(channels, channels, rng.randint(1, 4),
                                                 dilation=2)]))
    return nn.Sequential(*layers)


@pytest.mark.parametrize("seed", range(6))
def test_receptive_arithmetic_equals_the_gradient_probe_on_causal_stacks(seed):
    assert_matches_probe(to_modules(random.Random(seed)))


@pytest.mark.parametrize("seed", range(6))
def test_block_streaming_equals_one_shot_on_causal_stacks(seed):
    rng = random.Random(seed)
    plans = plan_stack(random_causal_specs(rng), (1, 1, 97), causal=True)
    stack = build_stack(plans, seed)
    x = torch.randn(1, 1, 97)
    with torch.no_grad():
        expected = stack(x)
    got = []
    rules = layer_rules(plans, stack)
    stream_forward(rules, iter(x.split(rng.randint(1, 13), dim=-1)), rng.randint(1, 17),
                   lambda i, _, out: got.append(out) if i == len(rules) - 1 else None)
    torch.testing.assert_close(torch.cat(got, dim=-1), expected)


# --- inits and errors -----------------------------------------------------------------------------

def test_nearest_init_is_causal_and_linear_is_refused():
    plan = plan_stack([L(type="ConvTranspose1d", in_channels=1, out_channels=1, kernel_size=3,
                         stride=3, init="nearest", causal=True)], (1, 1, 7))[0]
    x = torch.randn(1, 1, 7)
    with torch.no_grad():
        y = build_stack([plan], 0)(x)
    torch.testing.assert_close(y, x.repeat_interleave(3, dim=-1))
    with pytest.raises(ConvscopeError, match=r"^model\.layers\.0\.init: 'linear' is centred"):
        plan_stack([L(type="ConvTranspose1d", in_channels=1, out_channels=1, kernel_size=5,
                      stride=3, init="linear", causal=True)], (1, 1, 7))


@pytest.mark.parametrize("specs, causal, message", [
    ([L(type="Tanh", causal=True)], False, r"^model\.layers\.0\.causal: Tanh takes no causal"),
    ([L(type="Conv1d", in_channels=1, out_channels=1, kernel_size=3, padding=2, causal=True)],
     False, r"^model\.layers\.0\.padding: a causal Conv1d \(causal: true\) pads d\*\(k-1\) = 2"),
    ([L(type="Residual", layers=[L(type="Conv1d", in_channels=1, out_channels=1, kernel_size=3,
                                   padding=1, padding_mode="reflect")])],
     True, r"^model\.layers\.0\.layers\.0\.padding_mode: a causal Conv1d \(model\.causal"),
    ([L(type="ConvTranspose1d", in_channels=1, out_channels=1, kernel_size=4, stride=2,
        padding=2)], True, r"^model\.layers\.0\.padding: a causal ConvTranspose1d"),
    ([L(type="Upsample", scale_factor=2, mode="linear")], True, r"^model\.layers\.0\.mode: "),
    ([L(type="AntiAliasedActivation")], True, r"^model\.layers\.0: model\.causal=true, but "),
    ([L(type="Conv1d", in_channels=1, out_channels=1, kernel_size=3, causal="yes")], False,
     r"^model\.layers\.0\.causal must be true or false"),
])
def test_errors_name_the_key(specs, causal, message):
    with pytest.raises(ConvscopeError, match=message):
        plan_stack(specs, (1, 1, 20), causal=causal)


# --- the causal seed example, through the pipeline ------------------------------------------------

def test_causal_seed_example_gives_32000_samples_and_lookahead_0(tmp_path):
    result = run_script("run.py", "model=seed_example", "model.causal=true", "plots.enabled=false",
                        "audio.enabled=false", "evaluate.enabled=false", "report=false",
                        f"hydra.run.dir={tmp_path}", cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads((tmp_path / "shapes.json").read_text())
    assert doc["layers"][-1]["output_shape"] == [1, 3, 32000]
    assert [row["type"] for row in doc["layers"]] == ["CausalConvTranspose1d"] * 2
    assert [row["lookahead"] for row in doc["layers"]] == [0, 0]
    assert doc["latency"] == {"lookahead_samples": 0, "lookahead_ms": 0.0}
    assert doc["alignment"]["ok"]


def test_causal_padding_error_is_one_line_exit_2(tmp_path):
    result = run_script("run.py", "model=seed_example", "model.causal=true",
                        "model.layers.0.padding=2", f"hydra.run.dir={tmp_path}", cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: model.layers.0.padding: a causal "
                                            "ConvTranspose1d (model.causal=true makes it causal)")
    assert len(result.stderr.strip().splitlines()) == 1
