"""Published checkpoints into the presets (stack/layouts.py): `model=hifigan_v* model.weights=`
and `model=bigvgan_v2_24k model.weights=` read the published generator's key layout, and
`model.export_layout=published` writes it back.

The oracle is the published class itself (tests/reference_generators.py, in the published
structure): its checkpoint is saved as the published code saves it (`{'generator':
state_dict}`, with torch's old `weight_g`/`weight_v` keys or the current
`parametrizations.weight.original0/1`), loaded into the preset, and the two forwards compared.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from torch import nn

import convscope
from convscope.audio.features import compute_features
from convscope.audio.segment import load_segment
from convscope.config.convert import to_layers
from convscope.config.schema import DataConfig, ModelConfig
from convscope.errors import ConvscopeError
from convscope.resources import bundled
from convscope.stack.build import build_stack
from convscope.stack.plan import plan_stack
from convscope.stack.preset_weights import load_stack_weights, published_state_dict
from tests import reference_generators as ref
from tests.helpers import REPO, run_script
from tests.test_presets import preset_model

QUIET = ["audio.subtype=FLOAT", "plots.enabled=false", "report=false", "evaluate.enabled=false"]
SEGMENT = ["data.start=2.0", "data.end=2.25"]
OLD_NAMES = {"parametrizations.weight.original0": "weight_g",
             "parametrizations.weight.original1": "weight_v"}
# A BigVGAN small enough for the default run, written by the same script as the preset
SMALL_BIGVGAN = {"num_mels": 8, "upsample_rates": [16, 16], "upsample_kernel_sizes": [32, 32],
                 "upsample_initial_channel": 16, "resblock_kernel_sizes": [3, 5],
                 "resblock_dilation_sizes": [[1, 3], [1, 3]], "activation": "snakebeta",
                 "snake_logscale": True, "use_tanh_at_final": False, "use_bias_at_final": False,
                 "resblock": "1"}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads spin-wait on a shared 2-core machine
    yield
    torch.set_num_threads(threads)


def old_style(state: dict) -> dict:
    """The state_dict torch.nn.utils.weight_norm (the published code's) gives for the same
    weights: the same tensors, named weight_g / weight_v."""
    out = {}
    for key, value in state.items():
        for new, old in OLD_NAMES.items():
            key = key.replace(new, old)
        out[key] = value
    return out


def published(make, x: torch.Tensor, seed: int = 5) -> nn.Module:
    """The published generator with variance-keeping random weights (its output follows every
    layer: tests/reference_generators.randomise_)."""
    torch.manual_seed(seed)
    return ref.randomise_(make(), x)


def save_checkpoint(generator: nn.Module, path: Path, old: bool, monkeypatch=None,
                    make=None) -> None:
    """train.py's save_checkpoint: {'generator': generator.state_dict()}. `old`: the generator
    built as the published code builds it, with torch.nn.utils.weight_norm, holding the same
    weights; its own state_dict (weight_g / weight_v) is what is saved."""
    state = generator.state_dict()
    if old:
        with monkeypatch.context() as patch:
            patch.setattr(ref, "weight_norm", torch.nn.utils.weight_norm)
            legacy = make()
        legacy.load_state_dict(old_style(state), strict=True)
        state = legacy.state_dict()
        assert any(key.endswith("weight_g") for key in state)
    torch.save({"generator": state}, path)


def _make_presets_module():
    spec = importlib.util.spec_from_file_location("make_presets", REPO / "scripts" /
                                                  "make_presets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _plain(layers: list) -> list:
    """make_presets' layer dicts without its YAML notes and comments."""
    return [{key: _plain(value) if key == "layers" else value for key, value in layer.items()
             if key not in ("note", "comment")} for layer in layers]


def small_bigvgan_model() -> ModelConfig:
    layers = _plain(_make_presets_module().bigvgan(SMALL_BIGVGAN))
    return ModelConfig(name="small_bigvgan", layers=to_layers(layers, "model.layers"),
                       layout="bigvgan")


def preset_stack(model: ModelConfig, x: torch.Tensor) -> nn.Module:
    return build_stack(plan_stack(model.layers, tuple(x.shape)), seed=0)


def forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return module(x)


def assert_same_function(preset: nn.Module, generator: nn.Module, x: torch.Tensor) -> None:
    want = forward(generator, x)
    assert 0.05 < want.std() and (want.abs() < 0.9).float().mean() > 0.5  # not silent/saturated
    torch.testing.assert_close(forward(preset, x), want, rtol=0, atol=1e-5)


@pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.*:FutureWarning")
@pytest.mark.parametrize("name, old", [("hifigan_v1", False), ("hifigan_v3", True)])
def test_a_published_hifigan_checkpoint_gives_the_published_output(name, old, tmp_path,
                                                                     monkeypatch):
    x = torch.randn(1, 80, 6, generator=torch.Generator().manual_seed(1))
    make = lambda: ref.HifiGanGenerator(ref.HIFIGAN_CONFIGS[name])  # noqa: E731
    generator = published(make, x)
    save_checkpoint(generator, tmp_path / "g_02500000", old, monkeypatch, make)
    model = preset_model(name)
    preset = preset_stack(model, x)
    load_stack_weights(preset, model, tmp_path / "g_02500000")
    assert_same_function(preset, generator, x)


def small_bigvgan() -> nn.Module:
    return ref.BigVGANGenerator(SMALL_BIGVGAN)


@pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.*:FutureWarning")
@pytest.mark.parametrize("old", [True, False])
def test_a_published_bigvgan_checkpoint_gives_the_published_output(old, tmp_path, monkeypatch):
    """A BigVGAN of the published structure, small; the full preset is the slow test below."""
    x = torch.randn(1, 8, 6, generator=torch.Generator().manual_seed(1))
    generator = published(small_bigvgan, x)
    save_checkpoint(generator, tmp_path / "bigvgan_generator.pt", old, monkeypatch,
                    small_bigvgan)
    model = small_bigvgan_model()
    preset = preset_stack(model, x)
    load_stack_weights(preset, model, tmp_path / "bigvgan_generator.pt")
    assert_same_function(preset, generator, x)
    # and back: the published names, Kaiser taps included, load strictly into the published class
    torch.manual_seed(9)
    again = small_bigvgan()
    again.load_state_dict(published_state_dict(preset, model), strict=True)
    torch.testing.assert_close(forward(again, x), forward(generator, x), rtol=0, atol=0)


@pytest.mark.slow
def test_the_bigvgan_v2_24k_preset_takes_the_published_checkpoint(tmp_path):
    x = torch.randn(1, 100, 6, generator=torch.Generator().manual_seed(1))
    make = lambda: ref.BigVGANGenerator(ref.BIGVGAN_V2_24K)  # noqa: E731
    generator = published(make, x)
    save_checkpoint(generator, tmp_path / "bigvgan_generator.pt", old=False)
    model = preset_model("bigvgan_v2_24k")
    preset = preset_stack(model, x)
    load_stack_weights(preset, model, tmp_path / "bigvgan_generator.pt")
    assert_same_function(preset, generator, x)


def hifigan_v2() -> nn.Module:
    return ref.HifiGanGenerator(ref.HIFIGAN_CONFIGS["hifigan_v2"])


def run_output(run_dir: Path) -> np.ndarray:
    shapes = json.loads((run_dir / "shapes.json").read_text())
    (name,) = [f for f in shapes["audio"]["files"] if f != "audio/input.wav"]
    return soundfile.read(str(run_dir / name), dtype="float32")[0] / shapes["audio"]["gain"]


@pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.*:FutureWarning")
def test_the_run_reads_and_exports_the_published_layout(tmp_path, monkeypatch):
    """model=hifigan_v2 model.weights=<train.py's checkpoint>: the run's output is the
    published forward on the run's frames; model.export_layout=published writes a weights.pt
    the published class loads strictly, giving the same output."""
    monkeypatch.chdir(tmp_path)
    x = torch.randn(1, 80, 6, generator=torch.Generator().manual_seed(1))
    generator = published(hifigan_v2, x)
    save_checkpoint(generator, tmp_path / "g_v2", True, monkeypatch, hifigan_v2)
    convscope.run(["model=hifigan_v2", "model.weights=g_v2", "model.export_layout=published",
                   *SEGMENT, *QUIET], out_dir="out")
    data = DataConfig(path=bundled("sample.wav"), sr=22050, start=2.0, end=2.25,
                      features="log_mel", fmax=8000)
    frames = compute_features(load_segment(data, tmp_path), data).samples
    expected = forward(generator, torch.from_numpy(frames)[None])[0, 0].numpy()
    got = run_output(tmp_path / "out")
    assert got.shape == expected.shape == (256 * frames.shape[-1],)
    assert 0.01 < np.std(expected)
    # float32 through ~60 layers: the run routes strided transposed convs to torch's native
    # kernel (stack/backends.safe_kernels), this process's forward to oneDNN; the two kernels'
    # rounding differs by ~1e-5 here (measured: 1.2e-5 at most on a peak of ~0.9)
    np.testing.assert_allclose(got, expected, atol=5e-5)

    saved = torch.load(tmp_path / "out" / "weights.pt", weights_only=True)
    assert list(saved) == ["generator"] and "resblocks.3.convs1.0.weight_g" in saved["generator"]
    torch.manual_seed(11)
    back = hifigan_v2()
    back.load_state_dict(saved["generator"], strict=True)
    torch.testing.assert_close(forward(back, x), forward(generator, x), rtol=0, atol=0)


def refused(overrides: list[str]) -> str:
    with pytest.raises(ConvscopeError) as caught:
        convscope.run([*SEGMENT, *QUIET, *overrides], out_dir="refused")
    message = str(caught.value)
    assert "\n" not in message
    # nothing written before the weights loaded (the API keeps its refused dir, with the log;
    # the command line removes it: the exit-2 test below)
    written = {p.name for p in Path("refused").iterdir()} if Path("refused").exists() else set()
    assert not written & {"audio", "plots", "weights.pt", "shapes.json", "index.html"}
    return message


def test_another_presets_checkpoint_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"generator": hifigan_v2().state_dict()}, "v2.pt")
    message = refused(["model=hifigan_v1", "model.weights=v2.pt"])
    assert message.startswith(f"model.weights: {tmp_path / 'v2.pt'} does not fit "
                              "model=hifigan_v1 read as the published hifigan layout")
    assert "the file looks like model=hifigan_v2, not model=hifigan_v1" in message
    assert ("conv_pre.weight_v [128, 80, 7] in the file, [512, 80, 7] in the model"
            in message)  # the shape mismatch: key and both shapes


def test_missing_and_extra_keys_name_the_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = hifigan_v2().state_dict()
    del state["resblocks.3.convs1.0.parametrizations.weight.original1"]
    state["resblocks.3.convs9.0.weight"] = torch.zeros(1)
    torch.save(state, "broken.pt")
    message = refused(["model=hifigan_v2", "model.weights=broken.pt"])
    assert "missing keys (1): resblocks.3.convs1.0.weight_v" in message
    assert "unexpected keys (1): resblocks.3.convs9.0.weight" in message
    assert "first missing by the rule resblocks.(I*3+J).convs1.R -> Parallel I" in message
    assert "no rule of the hifigan layout maps resblocks.3.convs9.0.weight" in message
    assert "looks like" not in message


def test_a_refused_checkpoint_is_exit_2_one_line_and_no_run_dir(tmp_path):
    torch.save({"generator": {"conv_pre.weight_v": torch.zeros(3, 80, 7)}}, tmp_path / "g.pt")
    result = run_script("run.py", "model=hifigan_v2", "model.weights=g.pt", "hydra.run.dir=out",
                        *SEGMENT, *QUIET, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: model.weights: {tmp_path / 'g.pt'} does not fit "
                           "model=hifigan_v2")
    assert "conv_pre.weight_v [3, 80, 7] in the file, [128, 80, 7] in the model" in line
    assert not (tmp_path / "out").exists()


def test_export_needs_a_layout_and_a_stack_reloads_its_own_weights(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = refused(["model.export_layout=published"])
    assert message.startswith("model.export_layout=published: model seed_example has no "
                              "published layout")
    convscope.run(["data.end=2.1", *QUIET, "seed=3"], out_dir="first")
    convscope.run(["data.end=2.1", *QUIET, "model.weights=first/weights.pt"], out_dir="again")
    first, again = (torch.load(tmp_path / run / "weights.pt", weights_only=True)
                    for run in ("first", "again"))
    assert first.keys() == again.keys()
    for key, value in first.items():
        torch.testing.assert_close(again[key], value, rtol=0, atol=0)
    convscope.run(["data.end=2.1", *QUIET], out_dir="seeded")  # seed 0: other weights
    seeded = torch.load(tmp_path / "seeded" / "weights.pt", weights_only=True)
    assert not torch.equal(seeded["0.weight"], first["0.weight"])


def test_the_docs_checkpoint_script_writes_what_the_published_class_loads(tmp_path):
    """scripts/make_published_checkpoint.py (docs/checkpoints.md): its checkpoint and config
    json build examples/hifigan_generator.py's Generator(h), which loads it strictly and gives
    the preset's output with the same file loaded."""
    done = run_script("make_published_checkpoint.py", "hifigan_v2", "g.pt", "--config-json",
                      "config.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    spec = importlib.util.spec_from_file_location("hifigan_generator",
                                                  REPO / "examples" / "hifigan_generator.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    from convscope.stack.config_object import read_config_json

    h = read_config_json(tmp_path / "config.json")
    assert h == {**ref.HIFIGAN_CONFIGS["hifigan_v2"], "num_mels": 80}
    generator = example.Generator(h)
    saved = torch.load(tmp_path / "g.pt", weights_only=True)
    assert "conv_pre.weight_g" in saved["generator"]
    generator.load_state_dict(saved["generator"], strict=True)
    model = preset_model("hifigan_v2")
    x = torch.randn(1, 80, 6, generator=torch.Generator().manual_seed(2))
    preset = preset_stack(model, x)
    load_stack_weights(preset, model, tmp_path / "g.pt")
    torch.testing.assert_close(forward(preset, x), forward(generator, x), rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.*:FutureWarning")
def test_a_published_bigvgan_checkpoint_into_model_module_with_model_h(tmp_path, monkeypatch):
    """The published class itself as model=module, built from model.h, loading the checkpoint
    (old weight norm, Kaiser taps as downsample.lowpass.filter): its run's output is its own
    forward on the run's frames."""
    monkeypatch.chdir(tmp_path)
    x = torch.randn(1, 8, 6, generator=torch.Generator().manual_seed(1))
    generator = published(small_bigvgan, x)
    save_checkpoint(generator, tmp_path / "bigvgan_generator.pt", True, monkeypatch,
                    small_bigvgan)
    h = "model.h={" + ", ".join(f"{key}: {json.dumps(value)}"
                                for key, value in SMALL_BIGVGAN.items()) + "}"
    frontend = ["data.features=log_mel", "data.sr=22050", "data.n_mels=8", "data.fmax=8000"]
    convscope.run(["model=module", f"model.target={REPO / 'tests' / 'reference_generators.py'}"
                   ":BigVGANGenerator", h, "model.weights=bigvgan_generator.pt", *frontend,
                   *SEGMENT, *QUIET], out_dir="out")
    data = DataConfig(path=bundled("sample.wav"), sr=22050, start=2.0, end=2.25,
                      features="log_mel", n_mels=8, fmax=8000)
    frames = compute_features(load_segment(data, tmp_path), data).samples
    expected = forward(generator, torch.from_numpy(frames)[None])[0, 0].numpy()
    assert 0.01 < np.std(expected)
    np.testing.assert_allclose(run_output(tmp_path / "out"), expected, atol=1e-5)


def test_a_tensor_the_presets_module_lacks_is_unexpected(tmp_path):
    """BigVGAN v2's conv_post has no bias (use_bias_at_final false): a file with one names it."""
    x = torch.randn(1, 8, 6, generator=torch.Generator().manual_seed(1))
    state = published(small_bigvgan, x).state_dict()
    state["conv_post.bias"] = torch.zeros(1)
    torch.save({"generator": state}, tmp_path / "g.pt")
    model = small_bigvgan_model()
    with pytest.raises(ConvscopeError, match=r"unexpected keys \(1\): conv_post\.bias$"):
        load_stack_weights(preset_stack(model, x), model, tmp_path / "g.pt")
