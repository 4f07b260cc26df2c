"""convscope.describe on a HiFi-GAN-like generator written here (not a config): every conv call
with the shapes torch's own hooks see, MACs equal to FlopCounterMode per call, formulas ending in
the output length, exact rates; and the module left exactly as it was."""

import json
import subprocess
import sys
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

import convscope
from convscope.errors import ConvscopeError
from tests.helpers import REPO

STRIDES, KERNELS = (8, 8, 2, 2), (16, 16, 4, 4)


class ResBlock(nn.Module):
    """Dilated convs with residual adds; one LeakyReLU module called before every conv."""

    def __init__(self, channels: int, kernel: int, dilations=(1, 3)):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d,
                                             padding=d * (kernel - 1) // 2) for d in dilations)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x):
        for conv in self.convs:
            x = x + conv(self.act(x))
        return x


class Generator(nn.Module):
    """conv_pre, four weight-normed upsamplers each followed by two parallel resblocks averaged
    (MRF), conv_post, tanh: the shape of HiFi-GAN's generator, small."""

    def __init__(self, channels: int = 32):
        super().__init__()
        self.conv_pre = weight_norm(nn.Conv1d(80, channels, 7, padding=3))
        self.ups, self.resblocks = nn.ModuleList(), nn.ModuleList()
        for u, k in zip(STRIDES, KERNELS):
            self.ups.append(weight_norm(nn.ConvTranspose1d(channels, channels // 2, k, u,
                                                           padding=(k - u) // 2)))
            channels //= 2
            self.resblocks.extend(ResBlock(channels, kernel) for kernel in (3, 5))
        self.conv_post = nn.Conv1d(channels, 1, 7, padding=3)
        self.tanh = nn.Tanh()

    def forward(self, x):
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, 0.1))
            x = (self.resblocks[2 * i](x) + self.resblocks[2 * i + 1](x)) / 2
        return self.tanh(self.conv_post(F.leaky_relu(x)))


CONVS = (nn.Conv1d, nn.ConvTranspose1d, nn.Linear)


def torch_oracle(model: nn.Module, x: torch.Tensor) -> list[tuple]:
    """(name, input shape, output shape, FlopCounterMode MACs) of every conv call, from hooks
    written here, each call re-run alone under FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    calls, handles = [], []
    for name, m in model.named_modules():
        if isinstance(m, CONVS):
            handles.append(m.register_forward_hook(
                lambda m, args, out, name=name: calls.append((name, m, args[0].clone(), out))))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    oracle = []
    for name, m, inp, out in calls:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            m(inp)
        oracle.append((name, list(inp.shape), list(out.shape), counter.get_total_flops() // 2))
    return oracle


def model_state(model: nn.Module) -> dict:
    return {"params": {n: p.detach().clone() for n, p in model.named_parameters()},
            "buffers": {n: b.clone() for n, b in model.named_buffers()},
            "training": {n: m.training for n, m in model.named_modules()},
            "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()}}


def bytes_of(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.reshape(-1).view(torch.uint8)


def assert_left_as_it_was(model: nn.Module, before: dict) -> None:
    after = model_state(model)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    for kind in ("params", "buffers"):
        assert after[kind].keys() == before[kind].keys()
        for name, value in before[kind].items():  # bitwise: same bytes, not just close
            assert torch.equal(bytes_of(after[kind][name]), bytes_of(value)), name
    for name, m in model.named_modules():
        assert not m._forward_hooks and not m._forward_pre_hooks, name
        assert not m._forward_hooks_with_kwargs, name
    assert torch.is_grad_enabled()


@pytest.fixture
def generator():
    torch.manual_seed(0)
    model = Generator()
    model.resblocks[1].eval()  # a mix of modes, which describe must give back as it found it
    model.ups[2].parametrizations.weight.original0.requires_grad_(False)
    return model


def test_describe_lists_every_conv_call_as_torch_runs_it(generator):
    x = torch.randn(1, 80, 32)
    before = model_state(generator)
    oracle = torch_oracle(generator, x)
    d = convscope.describe(generator, x)
    assert_left_as_it_was(generator, before)
    convs = [r for r in d.rows if r.type in ("Conv1d", "ConvTranspose1d", "Linear")]
    assert [(r.name, r.input_shape, r.output_shape, r.macs) for r in convs] == oracle
    for row in convs:
        assert row.formula.endswith(f"= {row.output_shape[-1]}"), row
    assert [r.index for r in d.rows] == list(range(len(d.rows)))
    up = next(r for r in d.rows if r.name == "ups.0")
    assert up.formula == "L_out = (32-1)*8 - 2*4 + 1*(16-1) + 0 + 1 = 256"
    assert up.weight_shape == [32, 16, 16] and up.bias_shape == [16]
    # weight_norm's inner modules compute a weight, not a layer call: never rows of their own
    assert not any("parametrizations" in r.name for r in d.rows)
    assert up.params == sum(p.numel() for p in generator.ups[0].parameters())
    # the resblock's LeakyReLU module runs before each of its convs: one row per call
    acts = [r for r in d.rows if r.name == "resblocks.0.act"]
    assert len(acts) == 2 and all(r.formula == "L_out = L_in (pointwise)" for r in acts)
    assert d.rows[-1].name == "tanh" and d.rows[-1].output_shape == [1, 1, 32 * 256]


def test_rates_are_exact_fractions(generator):
    d = convscope.describe(generator, (1, 80, 32), sample_rate=22050 / 256)
    assert d.sample_rate == Fraction(22050, 256)
    assert d.rows[0].rate_in == Fraction(11025, 128)
    assert d.rows[-1].rate_out == 22050 and isinstance(d.rows[-1].rate_out, Fraction)
    rate = Fraction(22050, 256)
    for row in d.rows:
        if row.name.startswith("ups."):
            assert row.rate_in == rate
            rate *= STRIDES[int(row.name.split(".")[1])]
            assert row.rate_out == rate
        else:  # convs with stride 1 and activations keep the rate of the stage they are in
            assert row.rate_in == row.rate_out == rate, row.name
    same = convscope.describe(generator, (1, 80, 32), sample_rate="22050/256")
    assert [r.rate_out for r in same.rows] == [r.rate_out for r in d.rows]


def test_rates_through_strided_convs_pools_and_upsample():
    model = nn.Sequential(nn.Conv1d(1, 2, 4, stride=4), nn.MaxPool1d(2),
                          nn.Upsample(scale_factor=3), nn.ConstantPad1d((1, 2), 0.0))
    d = convscope.describe(model, (1, 1, 800), sample_rate=16000)
    assert [r.rate_out for r in d.rows] == [4000, 2000, 6000, 6000]
    assert [r.output_shape[-1] for r in d.rows] == [200, 100, 300, 303]


def test_a_module_called_twice_appears_twice():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 2, 3)

        def forward(self, x):
            return self.conv(self.conv(x))

    d = convscope.describe(Twice(), (1, 2, 20))
    assert [(r.name, r.input_shape[-1], r.output_shape[-1]) for r in d.rows] == \
        [("conv", 20, 18), ("conv", 18, 16)]


def test_a_forward_that_raises_leaves_no_hooks_and_says_where_in_one_line():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.norm = nn.Conv1d(1, 2, 3), nn.BatchNorm1d(2)

        def forward(self, x):
            self.norm(self.conv(x))
            raise ValueError("boom")

    model = Broken().train()
    before = model_state(model)
    with pytest.raises(ConvscopeError) as caught:
        convscope.describe(model, (2, 1, 10))
    assert str(caught.value) == ("describe: Broken (the model itself) raised ValueError: boom on "
                                 "an input of shape [2, 1, 10]")
    assert isinstance(caught.value.__cause__, ValueError)
    assert_left_as_it_was(model, before)


class Inner(nn.Module):
    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def forward(self, x):
        if self.what == "raise":
            raise RuntimeError("shapes do not fit\nsecond line")
        if self.what == "in place":
            return x.mul_(2)
        return x, x


@pytest.mark.parametrize("what, message", [
    ("raise", "describe: 1.0 (Inner) raised RuntimeError: shapes do not fit second line on an "
              "input of shape [1, 2, 8]"),
    ("in place", "describe: 1.0 (Inner) changed its input in place (mul); convscope describes a "
                 "model that leaves its input as it was (inplace=False there, or clone first)"),
])
def test_a_misbehaving_submodule_is_named_in_one_line(what, message):
    model = nn.Sequential(nn.Identity(), nn.Sequential(Inner(what)))
    with pytest.raises(ConvscopeError) as caught:
        convscope.describe(model, torch.randn(1, 2, 8))
    assert str(caught.value) == message


def test_a_model_returning_no_tensor_is_refused_in_one_line():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(ConvscopeError, match=r"^describe: Pair \(the model itself\) returned a "
                                             r"tuple of 2 items, not a tensor; "):
        convscope.describe(Pair(), (1, 2, 8))


def test_train_mode_batchnorm_and_dropout_are_left_alone():
    model = nn.Sequential(nn.Conv1d(1, 4, 3), nn.BatchNorm1d(4), nn.Dropout(0.5)).train()
    before = model_state(model)
    d = convscope.describe(model, torch.randn(3, 1, 50))
    assert_left_as_it_was(model, before)  # running stats unchanged: it ran in eval mode
    assert [r.type for r in d.rows] == ["Conv1d", "BatchNorm1d", "Dropout"]


def test_an_input_that_requires_grad_and_a_shape_tuple_give_the_same_rows(generator):
    x = torch.randn(1, 80, 32, requires_grad=True)
    from_tensor = convscope.describe(generator, x).rows
    assert x.grad is None and x.requires_grad
    assert convscope.describe(generator, (1, 80, 32)).rows == from_tensor


def test_linear_rows_count_macs_as_flop_counter_mode():
    model = nn.Sequential(nn.Conv1d(3, 4, 5, padding=2), nn.Linear(40, 16), nn.GELU(),
                          nn.Linear(16, 8, bias=False))
    x = torch.randn(2, 3, 40)
    d = convscope.describe(model, x)
    assert [(r.name, r.input_shape, r.output_shape, r.macs) for r in d.rows if r.type != "GELU"] \
        == torch_oracle(model, x)
    assert d.rows[1].formula == "L_out = out_features = 16 (Linear maps the last axis)"


def test_unknown_layers_get_a_measured_length_not_a_made_up_formula():
    model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten())
    row = convscope.describe(model, (1, 1, 10)).rows[1]
    assert row.formula == "L_out = 16 (measured; no length formula for Flatten)"
    assert row.macs == 0


def test_text_html_and_json(generator):
    d = convscope.describe(generator, (1, 80, 32), sample_rate=22050 / 256)
    text = str(d)
    assert text.splitlines()[0].split() == ["#", "name", "type", "weight", "bias", "params",
                                            "MACs", "input", "output", "RF", "ahead", "rate",
                                            "in", "(Hz)",
                                            "rate", "out", "(Hz)"]
    assert "layer 1 ups.0 ConvTranspose1d: L_out = (32-1)*8 - 2*4 + 1*(16-1) + 0 + 1 = 256" in text
    assert "11025/128 (86.1328)" in text
    page = d._repr_html_()
    assert page.startswith("<table") and page.endswith("</table>")
    assert page.count("<tr>") == len(d.rows) + 1
    doc = d.to_dict()
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc
    first = doc["layers"][0]
    assert list(first)[:10] == ["name", "index", "type", "weight_shape", "bias_shape", "params",
                                "macs", "input_shape", "output_shape", "formula"]
    assert (first["sample_rate_in"], first["sample_rate_in_fraction"]) == (86.1328125, "11025/128")
    assert doc["layers"][-1]["sample_rate_out"] == 22050


def test_html_escapes_names():
    model = nn.Sequential()
    model.add_module("<b>&", nn.ReLU())
    page = convscope.describe(model, (1, 1, 4))._repr_html_()
    assert "<b>" not in page and "&lt;b&gt;&amp;" in page


@pytest.mark.parametrize("example", ["abc", (1, -2, 3), (), 3, (1.0, 2)])
def test_bad_examples_are_refused(example):
    with pytest.raises(ConvscopeError, match="example must be a torch.Tensor or a shape"):
        convscope.describe(nn.ReLU(), example)


def test_describe_refuses_what_is_not_a_module():
    with pytest.raises(ConvscopeError, match="nn.Module"):
        convscope.describe(lambda x: x, (1, 1, 4))


def test_public_names_resolve_without_loading_matplotlib_or_the_flop_counter():
    code = ("import sys, convscope\n"
            "convscope.describe, convscope.Description, convscope.LayerRow, convscope.formula\n"
            "print('matplotlib' in sys.modules, 'torch.utils.flop_counter' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO / "src"), "PATH": ""})
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; "
                    "torch.cuda.is_available() is False here")
def test_cuda_module_and_shape_tuple(generator):
    cpu_rows = convscope.describe(generator, (1, 80, 32)).rows
    model = generator.cuda()
    before = model_state(model)
    d = convscope.describe(model, (1, 80, 32))
    assert_left_as_it_was(model, before)
    assert d.rows == cpu_rows
    assert convscope.describe(model, torch.randn(1, 80, 32, device="cuda")).rows == cpu_rows


def test_conv_rows_carry_their_settings_as_torch_holds_them():
    # shapes.json readers without torch (the report's captions) get k, s, p, d, groups from here
    from convscope.stack.causal import CausalConvTranspose1d

    model = nn.Sequential(nn.Conv1d(2, 4, 5, padding="same", dilation=2, groups=2), nn.ReLU(),
                          weight_norm(nn.ConvTranspose1d(4, 2, 5, stride=3, padding=1,
                                                         output_padding=2)),
                          CausalConvTranspose1d(2, 1, 4, stride=2))
    rows = convscope.describe(model, torch.randn(1, 2, 20)).to_dict()["layers"]
    for row, module in zip(rows, model):
        if not isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            assert "conv" not in row
            continue
        expected = {"kernel_size": module.kernel_size[0], "stride": module.stride[0],
                    "dilation": module.dilation[0], "groups": module.groups,
                    "padding": module.padding if isinstance(module.padding, str)
                    else module.padding[0]}
        if isinstance(module, nn.ConvTranspose1d):
            expected["output_padding"] = module.output_padding[0]
        if isinstance(module, CausalConvTranspose1d):
            expected["causal"] = True
        assert row["conv"] == expected
