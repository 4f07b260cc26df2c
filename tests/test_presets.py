"""The vocoder presets are the published generators: same parameters, same conv shapes in the same
order, T frames -> hop x T samples, and (with the reference's weights copied in) the same function.

The oracle is tests/reference_generators.py, plain torch written from the published code
(checked once against that code itself; nothing is downloaded here).
"""

from __future__ import annotations

import functools
import math

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from convscope.config.convert import to_run_config
from convscope.config.presets import model_preset
from convscope.errors import ConvscopeError
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack
from tests import reference_generators as ref
from tests.helpers import REPO, run_script
from tests.test_config import compose_run

PRESETS = ("hifigan_v1", "hifigan_v2", "hifigan_v3", "melgan", "bigvgan_v2_24k")
# Enough frames for every reflect padding of MelGAN's first conv (3 < T) and few enough to
# keep the biggest preset (BigVGAN, 112 M parameters) quick.
FRAMES = 6


def _param(name: str):
    """BigVGAN's checks cost ~20 s (its config conversion, two 112 M-parameter builds): slow."""
    if name == "bigvgan_v2_24k":
        return pytest.param(name, marks=[pytest.mark.slow])
    return name


PARAMS = [_param(name) for name in PRESETS]


# Converting a preset's ~250 nested layer nodes to dataclasses takes OmegaConf seconds: once each
preset_model = functools.lru_cache(model_preset)


def preset_file(name: str) -> dict:
    """A preset file as plain containers (quick: no schema merge)."""
    return OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "model" / f"{name}.yaml"))


def preset_data(name: str) -> dict:
    """The frontend a preset file names (`override /frontend: <name>` in its defaults): that
    configs/frontend/<name>.yaml's `data` node."""
    (entry,) = [e for e in preset_file(name)["defaults"] if "override /frontend" in e]
    frontend = entry["override /frontend"]
    return OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "frontend" /
                                                 f"{frontend}.yaml"))["data"]


class Pair:
    """A preset built by convscope and the reference generator, both from seed 0."""

    def __init__(self, name: str):
        self.reference, n_mels = _seeded(lambda: ref.reference(name))
        self.input = torch.randn(1, n_mels, FRAMES, generator=torch.Generator().manual_seed(1))
        self.plans = plan_stack(preset_model(name).layers, tuple(self.input.shape))
        self.preset = build_stack(self.plans, seed=0)


def _seeded(make):
    torch.manual_seed(0)
    return make()


_PAIRS: dict[str, Pair] = {}


@pytest.fixture(scope="module")
def pairs():
    """One build per preset for the whole module (BigVGAN's two builds take seconds), run on one
    torch thread: on a shared 2-core machine two threads spin-wait (a HiFi-GAN V1 forward took
    6 s on two, 0.3 s on one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield lambda name: _PAIRS[name] if name in _PAIRS else _PAIRS.setdefault(name, Pair(name))
    _PAIRS.clear()
    torch.set_num_threads(threads)


def parameter_calls(model: nn.Module, x: torch.Tensor) -> list[tuple[nn.Module, torch.Tensor]]:
    """(module, its output) for each call of a conv or a module with its own parameters (Snake),
    in call order: the published module lists and the preset's nesting differ, the calls do
    not (each of these generators calls every such module once)."""
    calls: list[tuple[nn.Module, torch.Tensor]] = []
    holders = [m for m in model.modules()
               if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))
               or (m._parameters and type(m).__name__ != "ParametrizationList")]
    hooks = [m.register_forward_hook(lambda m, _i, out: calls.append((m, out)))
             for m in holders]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return calls


def parameter_holders(model: nn.Module, x: torch.Tensor) -> list[nn.Module]:
    return [module for module, _ in parameter_calls(model, x)]


def conv_weight_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    return [(type(m).__name__.replace("Parametrized", ""), tuple(m.weight.shape))
            for m in parameter_holders(model, x) if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_script_writes_the_committed_presets(tmp_path):
    result = run_script("make_presets.py", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert sorted(p.stem for p in tmp_path.glob("*.yaml")) == sorted(PRESETS)
    for name in PRESETS:
        made = (tmp_path / f"{name}.yaml").read_text()
        assert made == (REPO / "configs" / "model" / f"{name}.yaml").read_text(), name


@pytest.mark.parametrize("name", PARAMS)
def test_parameter_count_is_the_published_generators(name, pairs):
    pair = pairs(name)
    assert count(pair.preset) == count(pair.reference)


@pytest.mark.parametrize("name", PARAMS)
def test_conv_weight_shapes_in_call_order(name, pairs):
    pair = pairs(name)
    shapes = conv_weight_shapes(pair.preset, pair.input)
    assert shapes == conv_weight_shapes(pair.reference, pair.input)


@pytest.mark.parametrize("name", PARAMS)
def test_frames_in_hop_times_frames_out(name, pairs):
    """The plan, the built preset and the reference agree: T frames give hop x T samples, hop
    being the product of the published upsample rates and the frontend's hop_length."""
    pair = pairs(name)
    hop = preset_data(name)["hop_length"]
    expected = (1, 1, hop * FRAMES)
    assert pair.plans[-1].output_shape == expected
    with torch.no_grad():
        assert tuple(pair.preset(pair.input).shape) == expected
        assert tuple(pair.reference(pair.input).shape) == expected
    upsampling = math.prod(plan.stride_ratio[0] for plan in pair.plans)
    assert upsampling == hop


def kaiser_filters(model: nn.Module) -> list[torch.Tensor]:
    """The low-pass taps of every anti-aliased activation's 2x up and down resampler."""
    return [buffer for name, buffer in model.named_buffers() if name.endswith("filter")]


def copy_kaiser_filters(source: nn.Module, target: nn.Module) -> None:
    """BigVGAN's up and down filters are all the same taps (ratio 2, 12 taps). The float32 taps
    of the published code and convscope's (float64, rounded) differ in the last bit, which the
    check below allows; copying them keeps that bit from growing, through ~100 Snakes of
    arguments in the tens, into differences that would hide real ones."""
    taps, targets = kaiser_filters(source), kaiser_filters(target)
    assert len(taps) == len(targets)
    for tap, other in zip(taps, targets):
        torch.testing.assert_close(other.flatten(), tap.flatten(), rtol=0, atol=1e-7)
        other.copy_(tap.view_as(other))


@pytest.mark.parametrize("name", PARAMS)
def test_same_function_with_the_references_weights(name, pairs):
    """Give the reference variance-keeping random weights and copy every parameter (weight
    norm's g and v, biases, Snake's alpha and beta) into the preset call by call: every conv and
    Snake gives the same output, and so does the whole generator."""
    pair = pairs(name)
    ref.randomise_(pair.reference, pair.input)
    source = parameter_calls(pair.reference, pair.input)
    target = parameter_holders(pair.preset, pair.input)
    assert len(source) == len(target)
    with torch.no_grad():
        for (a, _), b in zip(source, target):
            pa, pb = list(a.parameters()), list(b.parameters())
            assert [p.shape for p in pa] == [p.shape for p in pb], (a, b)
            for p, q in zip(pa, pb):
                q.copy_(p)
        copy_kaiser_filters(pair.reference, pair.preset)
        want, got = pair.reference(pair.input), pair.preset(pair.input)
        other = pair.reference(torch.randn_like(pair.input))
    for index, ((_, expected), (_, actual)) in enumerate(
            zip(source, parameter_calls(pair.preset, pair.input))):
        scale = max(1.0, expected.abs().max().item())
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4 * scale,
                                   msg=lambda m, i=index: f"call {i}: {m}")
    # The output check means something only where it follows the input and is not saturated
    assert (other - want).std() > 0.3 * want.std()
    assert (want.abs() < 0.9).float().mean() > 0.5
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def conv_layers(layers: list[dict]) -> list[dict]:
    """Every Conv1d/ConvTranspose1d entry of a config stack, blocks opened."""
    found = []
    for layer in layers:
        if layer["type"] in ("Conv1d", "ConvTranspose1d"):
            found.append(layer)
        found += conv_layers(layer.get("layers") or [])
    return found


@pytest.mark.parametrize("name", PRESETS)
def test_weight_norm_on_every_conv_as_published(name):
    """Each published generator wraps every conv it has in weight_norm."""
    convs = conv_layers(preset_file(name)["model"]["layers"])
    assert convs and all(layer.get("weight_norm") is True for layer in convs)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_sets_the_published_frontend(name):
    data = preset_data(name)
    assert (data["features"], data["center"]) == ("log_mel", False)
    assert tuple(data[key] for key in ("sr", "n_fft", "hop_length", "win_length", "n_mels",
                                       "fmin", "fmax")) == ref.FRONTENDS[name]


def test_model_sets_its_frontend_and_overrides_win():
    """`model=<preset>` composes the stack and the frontend with configs/run.yaml (the smallest
    preset: every one is a `_global_` file the same way); the command line still wins."""
    name = "hifigan_v3"
    cfg = to_run_config(compose_run(f"model={name}", "data=speech", "data.hop_length=128"))
    assert cfg.model == preset_model(name)
    sr, n_fft, hop, _win, n_mels, _fmin, fmax = ref.FRONTENDS[name]
    assert hop != 128
    assert (cfg.data.features, cfg.data.sr, cfg.data.n_fft, cfg.data.hop_length,
            cfg.data.n_mels, cfg.data.fmax) == ("log_mel", sr, n_fft, 128, n_mels, fmax)
    assert cfg.data.path.endswith("speech.wav")  # the data group still picks the file


def test_global_preset_without_model_node_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "broken.yaml").write_text("# @package _global_\ndata:\n  sr: 8000\n")
    monkeypatch.setattr("convscope.config.presets.configs_dir", lambda: tmp_path)
    with pytest.raises(ConvscopeError, match="model=broken: .* without a 'model:' node"):
        model_preset("broken")
