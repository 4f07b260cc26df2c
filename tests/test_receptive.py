"""Receptive field and lookahead (stack.receptive) against a gradient probe written here: every
conv weight set to ones (biases 0, Snake alphas 1), a positive input, and a one-hot backpropagated
from each interior output index of each layer call; the nonzero input gradients are what that
output depends on. Random stacks of convs, upsamplers and generator blocks, all phases."""

import json
import math
import random
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

import convscope
from convscope.stack.blocks import AntiAliasedActivation, Parallel, Residual, Snake, SnakeBeta
from convscope.stack.receptive import receptive_reaches
from tests.helpers import REPO, run_script

CHANNELS = 2
LENGTH = 96
WINDOW = 60  # output indices probed per call, around the middle: several periods of phases
MARGIN = 12  # spans this close to the input's ends may be cut by an intermediate layer's edge
GRADIENT_FLOOR = 1e-12  # relative: float rounding leaves ~1e-16 on taps that are exactly zero


def ones_copy(model: nn.Module) -> nn.Module:
    """The model in float64 with every weight 1 and every bias 0 (Snake: alpha = beta = 1), so
    no two paths cancel and no dependency hides behind a zero weight."""
    import copy

    model = copy.deepcopy(model).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.fill_(0.0 if name.endswith("bias") else 1.0)
    return model.eval()


def leaf_names(model: nn.Module) -> dict[int, str]:
    inner = set()
    for m in model.modules():
        if hasattr(m, "parametrizations"):
            inner.update(id(p) for p in m.parametrizations.modules())
    return {id(m): name for name, m in model.named_modules()
            if id(m) not in inner and not any(id(c) not in inner for c in m.children())}


def layer_rate(model: nn.Module, name: str, occurrence: int, channels: int) -> Fraction:
    """A call's rate over the input from lengths alone: outputs added per 720 inputs added
    (720 is a multiple of every down factor in these stacks)."""
    module = dict(model.named_modules())[name]
    lengths = []
    handle = module.register_forward_hook(lambda m, a, out: lengths.append(out.shape[-1]))
    with torch.no_grad():
        for length in (LENGTH, LENGTH + 720):
            model(torch.ones(1, channels, length, dtype=torch.float64))
    handle.remove()
    calls = len(lengths) // 2  # per forward
    return Fraction(lengths[calls + occurrence] - lengths[occurrence], 720)


def gradient_probe(model: nn.Module, channels: int = CHANNELS, length: int = LENGTH):
    """[(name, rate, {j: (first, last)})] per leaf call in call order, for the output indices j
    whose nonzero input gradients keep MARGIN away from both ends of the input."""
    model = ones_copy(model)
    names = leaf_names(model)
    calls = []
    handles = [m.register_forward_hook(lambda m, a, out: calls.append((names[id(m)], out)))
               for m in model.modules() if id(m) in names]
    x = (torch.rand(1, channels, length, dtype=torch.float64) + 0.5).requires_grad_()
    model(x)
    for h in handles:
        h.remove()
    found, occurrences = [], {}
    for name, out in calls:
        occurrence = occurrences[name] = occurrences.get(name, -1) + 1
        # one backward per output index j of a window in the middle, batched
        first = max(0, out.shape[-1] // 2 - WINDOW // 2)
        window = range(first, min(out.shape[-1], first + WINDOW))
        one_hots = torch.zeros(len(window), *out.shape, dtype=out.dtype)
        for k, j in enumerate(window):
            one_hots[k, ..., j] = 1.0
        (grads,) = torch.autograd.grad(out, x, one_hots, retain_graph=True, is_grads_batched=True)
        spans = {}
        for j, grad in zip(window, grads.abs().sum(dim=(1, 2))):
            nonzero = (grad > GRADIENT_FLOOR * grad.max()).nonzero().flatten().tolist()
            if nonzero and MARGIN <= nonzero[0] and nonzero[-1] <= length - 1 - MARGIN:
                spans[j] = (nonzero[0], nonzero[-1])
        found.append((name, layer_rate(model, name, occurrence, channels), spans))
    return found


def lookahead_of(j: int, span: tuple[int, int], rate: Fraction) -> int:
    """Depended-on input indices after output j's time j / rate."""
    now = math.floor(j / rate)
    return max(0, span[1] - max(now, span[0] - 1))


def assert_matches_probe(model: nn.Module, channels: int = CHANNELS):
    reaches = receptive_reaches(model, (1, channels, LENGTH))
    rows = convscope.describe(model, torch.randn(1, channels, LENGTH)).rows
    probed = gradient_probe(model, channels)
    assert [r.name for r in rows] == [name for name, _, _ in probed]
    occurrences = {}
    for row, (name, rate, spans) in zip(rows, probed):
        occurrence = occurrences[name] = occurrences.get(name, -1) + 1
        reach = reaches[name][occurrence]
        assert reach.rate == rate, name
        assert len(spans) >= reach.period, f"{name}: too few interior outputs for every phase"
        for j, span in spans.items():
            assert reach.at(j) == span, (name, j)
        assert row.receptive_field == max(last - first + 1 for first, last in spans.values())
        assert row.lookahead == max(lookahead_of(j, s, rate) for j, s in spans.items())


# --- random stacks --------------------------------------------------------------------------------

def random_conv(rng: random.Random) -> nn.Module:
    k, s, d = rng.randint(1, 5), rng.randint(1, 3), rng.randint(1, 3)
    if s == 1 and rng.random() < 0.3:
        return nn.Conv1d(CHANNELS, CHANNELS, k, dilation=d, padding="same")
    return nn.Conv1d(CHANNELS, CHANNELS, k, stride=s, dilation=d, padding=rng.randint(0, k // 2))


def random_transposed(rng: random.Random) -> nn.Module:
    k, s, d = rng.randint(1, 6), rng.randint(1, 3), rng.randint(1, 2)
    op = rng.randint(0, max(s, d) - 1)
    layer = nn.ConvTranspose1d(CHANNELS, CHANNELS, k, stride=s, dilation=d, output_padding=op,
                               padding=rng.randint(0, d * (k - 1) // 2))
    return weight_norm(layer) if rng.random() < 0.3 else layer


def shape_keeping(rng: random.Random) -> nn.Module:
    k, d = rng.choice((1, 3, 5)), rng.randint(1, 3)
    return nn.Sequential(nn.LeakyReLU(0.1),
                         nn.Conv1d(CHANNELS, CHANNELS, k, dilation=d, padding=d * (k - 1) // 2))


def random_block(rng: random.Random) -> nn.Module:
    choice = rng.randrange(9)
    if choice < 3:
        return random_conv(rng)
    if choice < 5:
        return random_transposed(rng)
    if choice == 5:
        return nn.Upsample(scale_factor=rng.choice((2, 3)), mode=rng.choice(("nearest", "linear")))
    if choice == 6:
        return Residual(shape_keeping(rng))
    if choice == 7:
        return Parallel([Residual(shape_keeping(rng)), shape_keeping(rng)],
                        reduce=rng.choice(("mean", "sum")))
    act = rng.choice((Snake(CHANNELS), SnakeBeta(CHANNELS), nn.LeakyReLU(0.2)))
    return AntiAliasedActivation(act)


@pytest.mark.parametrize("seed", range(8))
def test_random_stacks_match_the_gradient_probe(seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    model = nn.Sequential(*(random_block(rng) for _ in range(rng.randint(2, 4))))
    assert_matches_probe(model)


@pytest.mark.parametrize("layer", [
    nn.Conv1d(CHANNELS, CHANNELS, 4, stride=3, dilation=2, padding=1),
    nn.ConvTranspose1d(CHANNELS, CHANNELS, 2, stride=3, padding=0),  # phases with no tap
    nn.ConvTranspose1d(CHANNELS, CHANNELS, 5, stride=2, dilation=2, padding=3, output_padding=1),
    nn.Upsample(scale_factor=3, mode="linear"),
    nn.AvgPool1d(3, stride=2, padding=1),
    nn.ConstantPad1d((3, 1), 0.0),
], ids=lambda m: type(m).__name__)
def test_single_layers_match_the_gradient_probe(layer):
    assert_matches_probe(nn.Sequential(layer, nn.LeakyReLU(0.1), layer))


# --- a module of the user's own: measured by the impulse probe ------------------------------------

class ResBlock1(nn.Module):
    """HiFi-GAN's ResBlock1: its own forward, F.leaky_relu between weight-normed dilated convs,
    residual adds."""

    def __init__(self, channels: int, kernel: int = 3, dilations=(1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, dilation=d,
                                  padding=d * (kernel - 1) // 2)) for d in dilations)
        self.convs2 = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2))
            for _ in dilations)

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, 0.1)), 0.1))
            x = xt + x
        return x


def test_a_custom_forward_is_measured_like_the_gradient_probe():
    torch.manual_seed(0)
    model = nn.Sequential(nn.ConvTranspose1d(CHANNELS, CHANNELS, 4, stride=2, padding=1),
                          ResBlock1(CHANNELS), nn.Conv1d(CHANNELS, CHANNELS, 3, stride=2))
    assert_matches_probe(model)
    reaches = receptive_reaches(model, (1, CHANNELS, LENGTH))
    assert reaches["1"][0].rate == 2  # the block itself, measured: rows of it would match too


def test_without_an_example_a_custom_forward_is_unknown_not_guessed():
    model = nn.Sequential(nn.Conv1d(CHANNELS, CHANNELS, 3), ResBlock1(CHANNELS))
    reaches = receptive_reaches(model)
    assert reaches["0"][0].receptive_field() == 3
    assert reaches["1"] == [None] and "1.convs1.0" not in reaches


# --- the seed example and a run's shapes.json -----------------------------------------------------

def seed_example() -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose1d(1, 2, 3, stride=1, padding=1),
                         nn.ConvTranspose1d(2, 3, 5, stride=2, padding=2, output_padding=1))


def test_seed_example_last_layer_sees_five_inputs():
    """Three layer-0 outputs of three inputs each: 5 inputs; two of them after the output."""
    d = convscope.describe(seed_example(), torch.randn(1, 1, 64), sample_rate=16000)
    assert [(r.receptive_field, r.lookahead) for r in d.rows] == [(3, 1), (5, 2)]
    assert d.to_dict()["latency"] == {"lookahead_samples": 2, "lookahead_ms": 2 / 16000 * 1000}
    assert_matches_probe(seed_example(), channels=1)
    header = str(d).splitlines()[0].split()
    assert header[header.index("output") + 1:][:2] == ["RF", "ahead"]


def test_run_writes_latency_from_the_last_row(tmp_path):
    result = run_script("run.py", "model=seed_example", "data.end=2.1", "plots.enabled=false",
                        "audio.enabled=false", "evaluate.enabled=false", "report=false",
                        f"hydra.run.dir={tmp_path}", cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads((tmp_path / "shapes.json").read_text())
    last = doc["layers"][-1]
    assert (last["receptive_field"], last["lookahead"]) == (5, 2)
    assert doc["latency"] == {"lookahead_samples": last["lookahead"],
                              "lookahead_ms": last["lookahead"] / 16000 * 1000}


class Opaque(nn.Module):
    """The same layers as a plain Sequential, behind a forward of its own: measured, not
    computed."""

    def __init__(self, layers: nn.Sequential):
        super().__init__()
        self.layers = layers

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


def test_the_probe_agrees_with_the_arithmetic_on_a_vocoder_sized_upsampler():
    """Upsampling by 2*8*8*2 = 256 through weight-normed transposed convs, Residual and Parallel
    blocks and Snake: every call's receptive field and lookahead, measured through the opaque
    wrapper, equal the arithmetic's on the visible stack. (Not anti-aliased activations four
    stages deep: their Kaiser tails multiply down to float64's rounding, where the probe says
    None rather than guess.)"""
    torch.manual_seed(1)
    layers = nn.Sequential(nn.Conv1d(4, 8, 7, padding=3))
    for stride, kernel in ((2, 4), (8, 16), (8, 16), (2, 5)):
        layers.append(weight_norm(nn.ConvTranspose1d(8, 8, kernel, stride,
                                                     padding=(kernel - stride) // 2)))
        layers.append(Parallel([Residual(nn.Sequential(nn.LeakyReLU(0.1),
                                                       nn.Conv1d(8, 8, 3, dilation=3, padding=3))),
                                nn.Sequential(Snake(8), nn.Conv1d(8, 8, 5, padding=2))]))
    computed = convscope.describe(layers, torch.randn(1, 4, 20)).rows
    measured = convscope.describe(Opaque(layers), torch.randn(1, 4, 20)).rows
    assert [r.name for r in measured] == ["layers." + r.name for r in computed]
    assert [(r.receptive_field, r.lookahead) for r in measured] \
        == [(r.receptive_field, r.lookahead) for r in computed]
    assert computed[-1].receptive_field is not None


def test_measuring_leaves_the_model_and_the_global_random_state_alone():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv1d(CHANNELS, CHANNELS, 3), ResBlock1(CHANNELS)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    rows = convscope.describe(model, (1, CHANNELS, 40)).rows
    assert rows[-1].receptive_field is not None
    assert torch.equal(torch.get_rng_state(), state)
    assert all(m.training for m in model.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
