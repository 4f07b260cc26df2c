"""model=module: the user's own nn.Module class, from a package that lives outside the repo.

The generator below is written into tmp_path as a package (`mygen/models.py`), as a user would
have it beside their audio, and runs from there as the working directory. Oracles: convscope's
rows against describe() of the same class, the output audio against the module's own forward in
torch, the kept layer outputs against torch's layers run by hand.
"""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import soundfile
import torch
from torch import nn

import convscope
from convscope.errors import ConvscopeError
from convscope.rundir import RunDir
from convscope.stack.describe import describe_pass
from tests.helpers import run_script

GENERATOR = '''
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

LRELU_SLOPE = 0.1


class ResBlock(nn.Module):
    """HiFi-GAN's ResBlock2: x + conv(leaky_relu(x)) per dilation."""

    def __init__(self, channels, kernel_size=3, dilations=(1, 3)):
        super().__init__()
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(channels, channels, kernel_size, dilation=d,
                                  padding=d * (kernel_size - 1) // 2)) for d in dilations)

    def forward(self, x):
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class Generator(nn.Module):
    def __init__(self, channels=16, in_channels=1, rates=(2, 2)):
        super().__init__()
        self.conv_pre = weight_norm(nn.Conv1d(in_channels, channels, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        ch = channels
        for u in rates:
            self.ups.append(weight_norm(nn.ConvTranspose1d(ch, ch // 2, 2 * u, u,
                                                           padding=u // 2)))
            ch //= 2
            self.resblocks.append(ResBlock(ch))
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, padding=3))

    def forward(self, x):
        x = self.conv_pre(x)
        for up, block in zip(self.ups, self.resblocks):
            x = block(up(F.leaky_relu(x, LRELU_SLOPE)))
        return torch.tanh(self.conv_post(F.leaky_relu(x)))


class Broken(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3)

    def forward(self, x):
        raise RuntimeError("the user's forward failed")


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3)

    def forward(self, x):
        return self.conv(x), x


class Picky(nn.Module):
    def __init__(self, channels=4):
        super().__init__()
        if channels % 2:
            raise ValueError(f"channels must be even, got {channels}")
        self.conv = nn.Conv1d(1, channels, 3)


def not_a_module():
    return 42
'''
SEGMENT = ["data.start=2", "data.end=2.25"]  # a quarter second of the bundled sample
TARGET = "mygen.models.Generator"


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    """tmp_path holding the user's package `mygen`, as the working directory; the package is
    forgotten afterwards, so every test imports its own copy."""
    package = tmp_path / "mygen"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(textwrap.dedent(GENERATOR))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [n for n in sys.modules if n == "mygen" or n.startswith("mygen.")]:
        del sys.modules[name]


def user_class(user_dir, name="Generator"):
    sys.path.insert(0, str(user_dir))
    try:
        from mygen import models
    finally:
        sys.path.remove(str(user_dir))
    return getattr(models, name)


def read_wav(path):
    samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    return samples.T, rate


def test_a_generator_outside_the_repo_runs_through_the_whole_pipeline(user_dir):
    result = run_script("run.py", "model=module", f"model.target={TARGET}",
                        "model.kwargs={channels: 8}", *SEGMENT, "plots.max_layers=4",
                        "plots.dpi=40", "hydra.run.dir=out", cwd=user_dir)
    assert result.returncode == 0, result.stderr
    out = user_dir / "out"
    shapes = json.loads((out / "shapes.json").read_text())
    assert shapes["model"] == {"target": TARGET, "kwargs": {"channels": 8}, "weights": None}

    # The rows are describe()'s of the same class on the same input shape and rate
    torch.manual_seed(0)
    generator = user_class(user_dir)(channels=8)
    described = convscope.describe(generator, shapes["input"]["shape"],
                                   sample_rate=shapes["input"]["sample_rate"])
    assert shapes["layers"] == described.to_dict()["layers"]
    last = described.rows[-1]
    assert shapes["output"]["shape"] == last.output_shape
    assert shapes["output"]["sample_rate"] == last.rate_out == 4 * shapes["input"]["sample_rate"]

    # Output WAVs decode at the output rate with the output's length
    wav, rate = read_wav(out / "audio" / f"layer{last.index}_ch0.wav")
    assert (rate, wav.shape) == (last.rate_out, (1, last.output_shape[-1]))
    assert read_wav(out / "audio" / "input.wav")[1] == shapes["input"]["sample_rate"]
    # Detailed figures for the 2 of the 8 conv calls that change the rate (the default); every
    # conv call is a row of the overview figure
    convs = [row for row in described.rows if row.type in ("Conv1d", "ConvTranspose1d")]
    drawn = [row for row in convs if row.rate_in != row.rate_out]
    assert (len(convs), len(drawn)) == (8, 2)
    assert sorted(p.name for p in (out / "plots").glob("*.png")
                  if RunDir.LAYER_PLOT.fullmatch(p.name)) == sorted(
        f"layer{row.index}_{row.type}.png" for row in drawn)
    assert (out / "plots" / "layers_overview.png").is_file()
    assert (f"plots: 2 detailed layer figures (rows {drawn[0].index}, {drawn[1].index}: the "
            "calls whose rate changes") in (out / "run.log").read_text()
    assert (out / "plots" / "spectrogram.png").is_file()
    assert (out / "metrics.json").is_file()  # the rate changes: the evaluate stage ran
    assert TARGET in (out / "index.html").read_text()  # the command, as typed
    # weights.pt is the module's state_dict: it loads back into the class strictly
    generator.load_state_dict(torch.load(out / "weights.pt", weights_only=True))


def test_saved_weights_load_and_the_output_is_the_modules_own_forward(user_dir):
    generator_class = user_class(user_dir)
    torch.manual_seed(123)  # not the run's seed: the output shows whether the file was loaded
    trained = generator_class(channels=8)
    torch.save(trained.state_dict(), user_dir / "g.pt")

    convscope.run(["model=module", f"model.target={TARGET}", "model.kwargs={channels: 8}",
                   "model.weights=g.pt", *SEGMENT, "audio.subtype=FLOAT", "plots.enabled=false",
                   "report=false", "evaluate.enabled=false"], out_dir="out")
    out = user_dir / "out"
    shapes = json.loads((out / "shapes.json").read_text())
    assert shapes["model"]["weights"] == str(user_dir / "g.pt")

    samples, _ = read_wav(out / "audio" / "input.wav")
    x = torch.from_numpy(samples / shapes["audio"]["input_gain"])[None]
    with torch.no_grad():
        expected = trained(x)[0].numpy()
        seeded = generator_class(channels=8)  # what the run would give without the file
    (name,) = [f for f in shapes["audio"]["files"] if f != "audio/input.wav"]
    got, _ = read_wav(out / name)
    np.testing.assert_allclose(got / shapes["audio"]["gain"], expected, atol=1e-5)
    with torch.no_grad():
        assert not np.allclose(seeded(x)[0].numpy(), expected, atol=1e-3)


def test_model_module_without_a_target_is_one_error_line_and_exit_2(user_dir):
    result = run_script("run.py", "model=module", "hydra.run.dir=out", cwd=user_dir)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "error: model.target: no value given: model=module runs your own nn.Module, named as "
        "model.target=package.module.Class (importable from this directory) or "
        "model.target=path/to/file.py:Class"]
    assert not (user_dir / "out" / "shapes.json").exists()


def run_error(overrides: list[str]) -> str:
    model = [] if any(o.startswith("model=") for o in overrides) else ["model=module"]
    with pytest.raises(ConvscopeError) as caught:
        convscope.run([*model, *SEGMENT, "plots.enabled=false", *overrides], out_dir="out")
    return str(caught.value)


# The same messages as the CLI's `error:` lines (convscope.run raises what it would print)
@pytest.mark.parametrize("overrides, expected", [
    (["model.target=nosuch.models.Generator"], ["model.target: no module named 'nosuch.models'"]),
    (["model.target=mygen.modles.Generator"], ["model.target: no module named 'mygen.modles'"]),
    (["model.target=mygen.models.Generatr"],
     ["model.target: module 'mygen.models' has no attribute 'Generatr'", "Generator"]),
    (["model.target=mygen.models.not_a_module"], ["model.target:", "returned a int"]),
    (["model.target=mygen.models.LRELU_SLOPE"], ["model.target:", "is a float"]),
    (["model.target=Generator"], ["model.target: 'Generator' is neither"]),
    ([f"model.target={TARGET}", "model.kwargs={chanels: 8}"],
     ["model.kwargs:", "unexpected keyword argument 'chanels'"]),
    (["model.target=mygen.models.Picky", "model.kwargs={channels: 3}"],
     ["model.target: mygen.models.Picky(channels=3) raised ValueError: channels must be even"]),
    (["model.target=mygen.models.Broken"],
     ["model.target: mygen.models.Broken raised RuntimeError: the user's forward failed"]),
    (["model.target=mygen.models.Pair"], ["model.target:", "returned a tuple of 2 items"]),
    ([f"model.target={TARGET}", "model.weights=absent.pt"],
     ["model.weights:", "absent.pt does not exist"]),
    (["model=hifigan_style", f"model.target={TARGET}"],
     ["model.target:", "set together with model.layers"]),
    (["model=seed_example", "model.target=null", "model.kwargs={channels: 8}"],
     ["model.kwargs is only read with model.target"]),
    (["model=seed_example", "model.layers=[]"], ["model.layers is empty", "model=module"]),
])
def test_bad_input_names_its_key(user_dir, overrides, expected):
    message = run_error(overrides)
    for text in expected:
        assert text in message
    assert "\n" not in message


def test_weights_with_wrong_keys_name_them(user_dir):
    generator = user_class(user_dir)(channels=8)
    state = generator.state_dict()
    state["extra.weight"] = torch.zeros(1)
    missing = [key for key in state if key.startswith("conv_post.")]
    for key in missing:
        del state[key]
    state["ups.0.bias"] = torch.zeros(99)
    torch.save(state, user_dir / "wrong.pt")
    message = run_error([f"model.target={TARGET}", "model.kwargs={channels: 8}",
                         "model.weights=wrong.pt"])
    assert message.startswith("model.weights:")
    assert f"missing keys ({len(missing)}): {', '.join(missing)}" in message
    assert "unexpected keys (1): extra.weight" in message
    assert "ups.0.bias [99] in the file, [4] in the model" in message

    torch.save({"steps": 5, "epoch": 1}, user_dir / "checkpoint.pt")  # no state_dict inside
    message = run_error([f"model.target={TARGET}", "model.kwargs={channels: 8}",
                         "model.weights=checkpoint.pt"])
    assert "holds a dict with keys steps, epoch, not a state_dict" in message
    torch.save(nn.Conv1d(1, 1, 3), user_dir / "pickled.pt")  # a module, not its state_dict
    message = run_error([f"model.target={TARGET}", "model.kwargs={channels: 8}",
                         "model.weights=pickled.pt"])
    assert "torch.load(weights_only=True) can read" in message


def test_a_file_target_and_a_2d_output(user_dir):
    """path/to/file.py:Class imports a file that is not in a package; (1, L) is a waveform."""
    (user_dir / "mono.py").write_text(textwrap.dedent('''
        from torch import nn

        class Mono(nn.Module):
            def __init__(self):
                super().__init__()
                self.up = nn.ConvTranspose1d(1, 1, 4, stride=2, padding=1)

            def forward(self, x):
                return self.up(x)[:, 0]
    '''))
    report = convscope.run(["model=module", "model.target=mono.py:Mono", *SEGMENT,
                            "plots.enabled=false", "report=false"], out_dir="out")
    shapes = report.shapes
    assert shapes["output"]["shape"] == [1, 2 * shapes["input"]["shape"][-1]]
    assert shapes["layers"][0]["output_shape"] == [1, 1, 2 * shapes["input"]["shape"][-1]]
    assert shapes["output"]["sample_rate"] == 2 * shapes["input"]["sample_rate"]


def test_describe_pass_keeps_the_outputs_torch_computes_in_one_pass():
    """The kept outputs are each conv's own output (copied before an in-place activation
    changes it), the return value is the model's, and the rows are describe()'s."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 3, 5), nn.LeakyReLU(0.2, inplace=True),
                          nn.ConvTranspose1d(3, 2, 4, stride=2), nn.Tanh())
    x = torch.randn(1, 1, 40)
    passed = describe_pass(model, x, sample_rate=100,
                           keep=lambda m: isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)))
    with torch.no_grad():
        conv0 = model[0](x)
        conv2 = model[2](torch.nn.functional.leaky_relu(conv0, 0.2))
        expected = torch.tanh(conv2)
    assert sorted(passed.kept) == [0, 2]
    torch.testing.assert_close(passed.kept[0], conv0)
    torch.testing.assert_close(passed.kept[2], conv2)
    torch.testing.assert_close(passed.output, expected)
    assert passed.description.rows == convscope.describe(model, x, sample_rate=100).rows
    # a bare layer is its own only leaf
    alone = describe_pass(model[0], x, keep=lambda m: True)
    torch.testing.assert_close(alone.kept[0], conv0)


def test_plots_layers_picks_rows_by_name_and_by_index(user_dir):
    convscope.run(["model=module", f"model.target={TARGET}", "model.kwargs={channels: 8}",
                   *SEGMENT, "plots.layers=[conv_pre,3]", "plots.workers=0", "plots.dpi=30",
                   "plots.spectrogram=false", "audio.enabled=false", "report=false",
                   "evaluate.enabled=false"], out_dir="out")
    rows = json.loads((user_dir / "out" / "shapes.json").read_text())["layers"]
    drawn = sorted(p.name for p in (user_dir / "out" / "plots").glob("*.png")
                   if RunDir.LAYER_PLOT.fullmatch(p.name))
    wanted = {0, 3} | {row["index"] for row in rows if row["name"] == "conv_pre"}
    assert drawn == sorted(f"layer{i}_{rows[i]['type']}.png" for i in wanted)
    assert (user_dir / "out" / "plots" / "layers_overview.png").is_file()


def test_an_unknown_plots_layers_name_is_one_line_before_anything_runs(user_dir):
    result = run_script("run.py", "model=module", f"model.target={TARGET}", *SEGMENT,
                        "plots.layers=[ups.9]", "hydra.run.dir=out", cwd=user_dir)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: plots.layers: 'ups.9' is no layer of {TARGET}; its conv layers are conv_pre, "
        "ups.0, ups.1, resblocks.0.convs.0, resblocks.0.convs.1, resblocks.1.convs.0, "
        "resblocks.1.convs.1, conv_post"]
    assert not (user_dir / "out").exists()
