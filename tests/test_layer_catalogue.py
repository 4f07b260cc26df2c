"""The layer catalogue (stack/layers/) family by family: a small module made of that family's ops,
every row's reach checked against the gradient probe of tests/test_analysis_published.py, its
lengths against torch's and its MACs against FlopCounterMode; the families without a finite rule
give their reason; an op no family knows is measured by the stated probe fallback or named. Each
registered length rule (LENGTH_RULES) against torch and against both its askers (plan,
layer_formulas), each registered block rule (BLOCK_RULES) against the one-shot forward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convscope
from convscope.config.schema import LayerConfig
from convscope.stack.build import build_stack
from convscope.stack.layer_formulas import layer_length
from convscope.stack.layers import FAMILIES, LENGTH_RULES, RULES
from convscope.stack.plan import ACTIVATIONS, SNAKES, leaf_plans, plan_stack
from convscope.stack.streaming import SIMPLE_RULES, layer_rules, stream_forward
from tests.streams import InOrder, assert_same_outputs, layer_outputs
from tests.test_analysis_published import assert_rows_match_the_probe, one_thread  # noqa: F401

C = 3


class Apply(nn.Module):
    """A leaf running `fn` (ops outside any torch layer module), then a conv to make a row."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def conv(k: int = 3, **kwargs) -> nn.Module:
    return nn.Conv1d(C, C, k, **kwargs)


FAMILY_MODELS = {
    "convolution: strided, dilated, same padding, pools": lambda: nn.Sequential(
        conv(5, stride=2, padding=1), conv(3, dilation=2, padding="same"),
        nn.AvgPool1d(3, stride=2, padding=1), conv(), nn.AvgPool1d(2), conv()),
    "transposed: strides, dilation, output padding": lambda: nn.Sequential(
        nn.ConvTranspose1d(C, C, 5, stride=3, padding=1, output_padding=2), conv(),
        nn.ConvTranspose1d(C, C, 3, stride=2, dilation=2, padding=2), conv()),
    "resampling: nearest and linear, module and functional, repeat_interleave": lambda: (
        nn.Sequential(
            nn.Upsample(scale_factor=2), conv(), nn.Upsample(scale_factor=3, mode="linear"),
            conv(), Apply(lambda x: F.interpolate(x, scale_factor=2, mode="linear")), conv(),
            Apply(lambda x: x.repeat_interleave(3, dim=-1)), conv(stride=2))),
    "pointwise: activations and arithmetic": lambda: nn.Sequential(
        conv(), nn.ELU(), Apply(lambda x: torch.tanh(x) * 0.5 + x.sin() ** 2 - x / 3), conv(),
        nn.LeakyReLU(0.2), nn.Dropout(0.5), conv()),
    "padding and cropping: modes, slices, strides, narrow": lambda: nn.Sequential(
        nn.ReflectionPad1d((4, 1)), conv(), Apply(lambda x: F.pad(x, (0, 5), mode="replicate")),
        conv(), Apply(lambda x: x[:, :, 3:-2]), conv(), Apply(lambda x: x[..., 1::2]), conv(),
        Apply(lambda x: x.narrow(-1, 2, x.shape[-1] - 4)), conv()),
    "layout: permute, transpose, reshape, unsqueeze": lambda: nn.Sequential(
        conv(), Apply(lambda x: x.permute(0, 2, 1).reshape(x.shape[0], x.shape[2], C)
                      .transpose(1, 2).unsqueeze(1).squeeze(1).contiguous()), conv()),
    "combination: cat on channels, stacked branches, channel means": lambda: nn.Sequential(
        conv(), Apply(lambda x: torch.cat([x[:, :1], F.pad(x, (1, 0))[:, 1:, :-1]], dim=1)),
        conv(), Apply(lambda x: torch.stack([x, 2 * x], dim=0).mean(dim=0)), conv(),
        Apply(lambda x: x * x.mean(dim=1, keepdim=True)), conv()),  # x - mean: sums to 0
    "normalisation: BatchNorm in eval, LayerNorm over channels": lambda: nn.Sequential(
        conv(), nn.BatchNorm1d(C), conv(),
        Apply(lambda x: F.layer_norm(x.transpose(1, 2), (C,)).transpose(1, 2)), conv()),
}


@pytest.mark.parametrize("family", sorted(FAMILY_MODELS))
def test_each_family_reads_what_the_gradient_probe_says(family):
    torch.manual_seed(0)
    model = FAMILY_MODELS[family]().eval()
    trace = assert_rows_match_the_probe(model, torch.randn(1, C, 64))
    assert not trace.probed


@pytest.mark.parametrize("layer, reason", [
    (nn.GroupNorm(1, C), "normalises over the whole signal (group_norm)"),
    (nn.InstanceNorm1d(C), "normalises over the whole signal (instance_norm)"),
    (Apply(lambda x: x - x.mean(dim=-1, keepdim=True)),
     "mean over the time axis: depends on the whole signal"),
    (Apply(lambda x: torch.cat([x, x], dim=-1)), "cat joins tensors along time: no periodic rule"),
    (Apply(lambda x: x.permute(2, 0, 1)), None),
])
def test_global_ops_give_their_reason_and_the_rows_after_them_too(layer, reason):
    model = nn.Sequential(conv(), layer, Apply(lambda x: x * 2)).eval()
    if reason is None:  # time moved to the first axis, kept: the row is still finite
        rows = convscope.describe(model, (1, C, 32)).rows
        assert rows[1].receptive_field == 3 and rows[1].receptive_reason is None
        return
    rows = convscope.describe(model, (1, C, 32)).rows
    assert rows[0].receptive_field == 3
    assert [r.receptive_reason for r in rows[1:]] == [reason, reason]
    assert all(r.receptive_field is None for r in rows[1:])


def test_a_bidirectional_gru_depends_on_every_sample():
    class Gru(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(C, C, batch_first=True, bidirectional=True)

        def forward(self, x):
            return self.gru(x.transpose(1, 2))[0].transpose(1, 2)

    rows = convscope.describe(nn.Sequential(conv(), Gru(), nn.Conv1d(2 * C, C, 1)),
                              (1, C, 16)).rows
    assert [r.receptive_reason for r in rows[1:]] \
        == ["recurrent (GRU, bidirectional): depends on every sample"] * 2


def test_an_op_no_family_knows_is_probed_or_named():
    """torch.flip has no rule. Inside a leaf of its own, the stated fallback measures the leaf
    (a local one: exact); a cumulative sum reads every earlier sample, which the probe cannot
    bound: the row says so, and the rows after it too."""
    local = nn.Sequential(conv(), Apply(lambda x: x + x.flip(1)), conv()).eval()
    d = convscope.describe(local, (1, C, 32))
    assert d.probed == ("1",)
    assert_rows_match_the_probe(local, torch.randn(1, C, 48))

    unbounded = nn.Sequential(conv(), Apply(lambda x: x.cumsum(-1)), conv()).eval()
    rows = convscope.describe(unbounded, (1, C, 32)).rows
    assert rows[1].receptive_reason == rows[2].receptive_reason == (
        "no rule for torch op cumsum, and the impulse probe could not resolve Apply")


def test_a_max_pool_reads_its_whole_window_as_an_average_pool_does():
    """The gradient of a max pool reaches only the largest sample of each window, so its oracle
    is the average pool with the same window: the value depends on every sample of it."""
    def rows(pool):
        model = nn.Sequential(conv(), pool, conv())
        rows_ = convscope.describe(model, (1, C, 64)).rows
        return [(r.receptive_field, r.lookahead) for r in rows_]

    assert rows(nn.MaxPool1d(3, stride=2, padding=1)) == rows(nn.AvgPool1d(3, stride=2, padding=1))
    # output j reads conv outputs 2j .. 2j+4 (dilation 2), so inputs 2j .. 2j+6
    assert rows(nn.MaxPool1d(3, stride=2, dilation=2))[1] == (7, 6)


def test_every_family_registers_its_ops_once():
    assert len(FAMILIES) == 9
    assert sum(len(family.OPS) for family in FAMILIES) == len(RULES)
    assert all(family.__doc__ for family in FAMILIES)


def test_an_output_made_without_the_input_says_so():
    model = nn.Sequential(conv(), Apply(lambda x: torch.zeros_like(x) + 1), conv())
    rows = convscope.describe(model, (1, C, 16)).rows
    assert [r.receptive_reason for r in rows] == [
        None, "does not depend on the model's input", "does not depend on the model's input"]


def test_anti_aliased_activations_count_their_kaiser_filters_as_flop_counter_mode():
    from torch.utils.flop_counter import FlopCounterMode  # lazy: it imports torch._dynamo

    from convscope.stack.blocks import AntiAliasedActivation, SnakeBeta

    model = nn.Sequential(conv(), AntiAliasedActivation(SnakeBeta(C)), conv()).eval()
    x = torch.randn(2, C, 40)
    rows = convscope.describe(model, x).rows
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    assert [r.type for r in rows][1:4] == ["KaiserUpsample", "SnakeBeta", "KaiserDownsample"]
    assert rows[1].macs > 0 and rows[3].macs > 0
    assert sum(r.macs for r in rows) == counter.get_total_flops() // 2


# --- every registered family against torch: lengths, MACs, length rules, block rules ---------


@pytest.mark.parametrize("family", sorted(FAMILY_MODELS))
def test_each_family_model_has_torchs_lengths_and_flop_counter_modes_macs(family):
    from torch.utils.flop_counter import FlopCounterMode  # lazy: it imports torch._dynamo

    torch.manual_seed(0)
    model = FAMILY_MODELS[family]().eval()
    x = torch.randn(2, C, 64)
    shapes = {}

    def keep(name: str, out: torch.Tensor) -> None:  # a hook returning a value replaces the output
        shapes.setdefault(name, list(out.shape))

    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: keep(name, out))
             for name, module in model.named_modules() if name]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    for hook in hooks:
        hook.remove()
    rows = convscope.describe(model, x).rows
    assert [r.output_shape for r in rows] == [shapes[r.name] for r in rows]
    assert sum(r.macs for r in rows) == counter.get_total_flops() // 2


def spec(type_: str, **kwargs) -> LayerConfig:
    return LayerConfig(type=type_, **kwargs)


# planned type -> config stacks that plan it, its centred and causal variants
LENGTH_CASES = {
    "Conv1d": [[spec("Conv1d", out_channels=2, kernel_size=5, stride=2, padding=3)],
               [spec("Conv1d", out_channels=2, kernel_size=4, dilation=3, padding="same",
                     padding_mode="replicate")],
               [spec("Conv1d", out_channels=2, kernel_size=5, stride=3, causal=True)]],
    "ConvTranspose1d": [
        [spec("ConvTranspose1d", out_channels=2, kernel_size=5, stride=3, padding=1,
              output_padding=2, dilation=2)],
        [spec("ConvTranspose1d", out_channels=2, kernel_size=2, stride=4, causal=True)]],
    "Upsample": [[spec("Upsample", scale_factor=3, mode="linear")]],
    "KaiserUpsample": [[spec("AntiAliasedActivation")]],
    "KaiserDownsample": [[spec("AntiAliasedActivation")]],
}


def leaf_calls(stack: nn.Module, x: torch.Tensor) -> list[tuple[nn.Module, int, int]]:
    """(module, input length, output length) of every leaf module call, in call order."""
    calls = []
    hooks = [m.register_forward_hook(lambda m, i, o: calls.append((m, i[0].shape[-1],
                                                                   o.shape[-1])))
             for m in stack.modules() if not list(m.children())]
    with torch.no_grad():
        stack(x)
    for hook in hooks:
        hook.remove()
    return calls


@pytest.mark.parametrize("type_", sorted(LENGTH_RULES))
def test_each_length_rule_is_torchs_and_the_one_plan_and_layer_formulas_print(type_):
    """Every registered length rule: the planned length is torch's, and the built layer's
    formula (stack.layer_formulas) is the planned one's, text for text (one rule, two askers)."""
    seen = 0
    for specs in LENGTH_CASES[type_]:
        for length in (1, 37, 64):
            plans = plan_stack(specs, (1, C, length))
            stack = build_stack(plans, 0)
            calls = leaf_calls(stack, torch.randn(1, C, length))
            for plan, (module, length_in, length_out) in zip(leaf_plans(plans), calls,
                                                             strict=True):
                if plan.type == type_:
                    seen += 1
                    assert length_out == plan.output_shape[-1]
                    assert layer_length(module, length_in) == (length_out, plan.formula)
    assert seen >= len(LENGTH_CASES[type_]) * 3


def streamed_specs(type_: str) -> list[list[LayerConfig]]:
    """Config stacks holding `type_`, for its block rule."""
    if type_ in ACTIVATIONS or type_ in SNAKES:
        return [[spec("Conv1d", out_channels=C, kernel_size=3, padding=1), spec(type_)]]
    return [specs for specs in LENGTH_CASES[type_]] + {
        "Conv1d": [[spec("Conv1d", out_channels=C, kernel_size=4, padding=2,
                         padding_mode="replicate")]],
        "Upsample": [[spec("Upsample", scale_factor=2)]]}.get(type_, [])


@pytest.mark.parametrize("type_", sorted(SIMPLE_RULES))
def test_each_block_rule_streams_what_one_shot_computes(type_):
    for specs in streamed_specs(type_):
        length = 101
        plans = plan_stack(specs, (1, C, length))
        stack = build_stack(plans, 0)
        x = torch.randn(1, C, length, generator=torch.Generator().manual_seed(1))
        collect = InOrder(len(plans))
        stream_forward(layer_rules(plans, stack), (x[..., i: i + 13] for i in range(0, length, 13)),
                       7, collect)
        # 1e-4: torch's linear Upsample kernel rounds its float32 source weights its own way
        # (a few ulps of samples near 3); a wrong sample is off by O(1)
        assert_same_outputs(layer_outputs(stack, x), collect.joined(x[..., :0]), atol=1e-4)
