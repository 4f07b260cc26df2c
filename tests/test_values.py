"""Every config value is checked at the boundary with its key named; a non-finite layer output
is an error naming the first layer that gave it; JSON files are strict (issue 13.3-4).

The keys come from the schema itself (tests.cli_property.schema_keys), so a new float or int
key is covered without editing this file.
"""

from __future__ import annotations

import json
import math
import typing

import numpy as np
import pytest
import soundfile
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from convscope.cli import describe_config_error
from convscope.config.bounds import FLOAT32_MAX
from convscope.config.convert import register_configs, to_chunks_config, to_run_config
from convscope.config.schema import LayerConfig
from convscope.errors import ConvscopeError
from convscope.files import NON_FINITE_NOTE, write_json
from convscope.pipeline.single import run
from convscope.resources import configs_dir
from convscope.stack.plan import plan_stack
from tests.cli_property import RUN_KEYS, _base


@pytest.fixture(scope="module")
def base() -> dict:
    """The reference example's composed config as a plain dict (one compose for the module)."""
    register_configs()
    with initialize_config_dir(str(configs_dir()), version_base="1.3"):
        cfg = compose("run")
    return OmegaConf.to_container(cfg, resolve=False)


def _with(base: dict, key: str, value) -> dict:
    cfg = json.loads(json.dumps({k: v for k, v in base.items() if k != "hydra"}))
    *parents, last = key.split(".")
    node = cfg
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return cfg


def _refused(cfg: dict, key: str) -> str:
    with pytest.raises(ConvscopeError) as caught:
        to_run_config(cfg)
    message = str(caught.value)
    assert key in message, message
    return message


FLOAT_KEYS = [key for key, hint in RUN_KEYS if _base(hint) is float]
INT_KEYS = [key for key, hint in RUN_KEYS if _base(hint) is int]


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_every_float_key_refuses_non_finite_values_by_name(base, key, value):
    _refused(_with(base, key, value), key)


@pytest.mark.parametrize("key", INT_KEYS)
def test_every_int_key_refuses_values_beyond_64_bits_by_name(base, key):
    message = _refused(_with(base, key, 2**70), key)
    with pytest.raises((RuntimeError, OverflowError, ValueError)):  # the oracle: torch refuses
        torch.manual_seed(2**70)
    assert "64-bit" in message


@pytest.mark.parametrize("key, value", [
    ("plots.dpi", 0), ("plots.dpi", 10**6), ("plots.width_inches", 1e9),
    ("plots.width_inches", 0.0), ("plots.max_channels", 0), ("plots.max_channels", 10**6),
    ("plots.window_ms", 0.0), ("plots.window_ms", 1e7), ("plots.spectrogram_start", -1.0),
    ("plots.spectrogram_seconds", 0.0), ("seed", -1), ("stream.threads", -1),
    ("stream.threads", 10**6), ("audio.peak", 0.0), ("audio.peak", -0.5),
    ("evaluate.edge_ms", 1e300), ("data.start", -1.0), ("stream.block_seconds", 0.0),
    ("data.sr", 2**40), ("data.n_fft", 2**40),
    ("limits.memory_gb", 1e308), ("limits.block_mb", 1e300), ("limits.max_gmacs", 1e19),
])
def test_absurd_values_are_refused_by_name(base, key, value):
    _refused(_with(base, key, value), key)


def test_figure_pixels_are_bounded(base):
    cfg = _with(_with(base, "plots.dpi", 1200), "plots.width_inches", 60.0)
    _refused(cfg, "plots.width_inches")  # 72000 pixels wide: 4 bytes each per row
    _refused(_with(_with(base, "plots.dpi", 1200), "plots.max_channels", 100),
             "plots.max_channels")


@pytest.mark.parametrize("name, value", [
    ("alpha", math.nan), ("negative_slope", math.inf), ("kernel_size", 2**70),
    ("sinc_beta", -math.inf), ("negative_slope", 1e39),
])
def test_layer_values_are_refused_with_the_layer_key(base, name, value):
    layers = [{"type": "LeakyReLU"}, {"type": "ELU"}]
    cfg = _with(_with(base, "model.layers", layers), f"model.layers.1.{name}", value)
    _refused(cfg, f"model.layers.1.{name}")


def test_a_layer_float_is_refused_where_float32_cannot_hold_it():
    with pytest.raises(RuntimeError, match="overflow"):  # the oracle: torch at forward time
        torch.nn.ELU(alpha=FLOAT32_MAX * 10)(-torch.ones(1, 1, 4))
    assert torch.isfinite(torch.nn.ELU(alpha=FLOAT32_MAX)(-torch.ones(1, 1, 4))).all()


def test_chunk_settings_are_checked(base):
    cfg = {**_with(base, "stream.threads", 1), "chunks": {"tolerance": math.nan}}
    with pytest.raises(ConvscopeError, match="chunks.tolerance"):
        to_chunks_config(cfg)
    with pytest.raises(ConvscopeError, match="chunks.seconds must be a finite"):
        to_chunks_config({**cfg, "chunks": {"seconds": math.inf}})


@pytest.mark.parametrize("padding", [15, 16, 17])
def test_circular_padding_longer_than_the_input_is_refused_as_torch_does(padding):
    layer = LayerConfig(type="Conv1d", out_channels=1, kernel_size=3, padding=padding,
                        padding_mode="circular")
    conv = torch.nn.Conv1d(1, 1, 3, padding=padding, padding_mode="circular")
    try:
        torch_length = conv(torch.zeros(1, 1, 16)).shape[-1]
    except RuntimeError:
        with pytest.raises(ConvscopeError, match="model.layers.0.padding: circular"):
            plan_stack([layer], (1, 1, 16))
    else:
        assert plan_stack([layer], (1, 1, 16))[0].output_shape[-1] == torch_length


@pytest.mark.parametrize("override, message", [
    ("model.layers.7.stride=2", "model.layers.7: the stack has 2 layers (0-1)"),
    ("+model.layers.2.stride=2", "model.layers.2: the stack has 2 layers (0-1)"),
    ("model.layers.0.foo=1", "model.layers.0.foo: a layer has no key foo"),
])
def test_layer_overrides_name_the_full_layer_key(override, message):
    register_configs()
    with initialize_config_dir(str(configs_dir()), version_base="1.3"):
        with pytest.raises(Exception) as caught:
            compose("run", overrides=[override])
    assert describe_config_error(caught.value).startswith(message)


def test_unknown_key_added_inside_a_layer_names_the_layer(base):
    layers = [{"type": "Conv1d", "out_channels": 1, "kernel_size": 3, "foo": 1}]
    _refused(_with(base, "model.layers", layers), "model.layers.0.foo")


def test_json_is_strict_and_says_which_values_were_not_finite(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"snr_db": math.inf, "rows": [{"x": math.nan}, {"x": 1.5}], "ok": 1})

    def refuse(constant):
        raise ValueError(constant)

    document = json.loads(path.read_text(), parse_constant=refuse)  # strict: no NaN/Infinity
    assert document["snr_db"] is None and document["rows"][0]["x"] is None
    assert document["rows"][1]["x"] == 1.5
    assert document[NON_FINITE_NOTE] == ["snr_db", "rows.0.x"]


LEAKY = {"type": "LeakyReLU", "negative_slope": 1e38}
OVERFLOWING = [{"type": "Conv1d", "out_channels": 2, "kernel_size": 3, "padding": 1},
               LEAKY, LEAKY, {"type": "Tanh"}]


@pytest.mark.parametrize("stream", ["false", "true"])
def test_a_non_finite_output_names_the_first_layer_and_writes_no_result(base, tmp_path, stream):
    wav = tmp_path / "in.wav"
    t = np.arange(1600) / 16000
    soundfile.write(str(wav), 0.5 * np.sin(2 * np.pi * 440 * t), 16000)
    cfg = _with(_with(base, "model.layers", OVERFLOWING), "data.path", str(wav))
    cfg["data"].update(start=0.0, end=None)
    cfg["stream"].update(enabled=stream, block_seconds=0.02)
    run_cfg = to_run_config(cfg)
    # the oracle: torch's own layer outputs, finite up to the culprit
    torch.manual_seed(run_cfg.seed)  # before the layers are made, as convscope's build does
    stack = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3, padding=1), torch.nn.LeakyReLU(1e38),
                                torch.nn.LeakyReLU(1e38), torch.nn.Tanh())
    first_bad = None
    with torch.no_grad():
        x = torch.as_tensor(soundfile.read(str(wav), dtype="float32")[0])[None, None]
        for index, layer in enumerate(stack):
            x = layer(x)
            if first_bad is None and not torch.isfinite(x).all():
                first_bad = index
    assert first_bad == 2
    with pytest.raises(ConvscopeError, match=f"model.layers.{first_bad}: LeakyReLU gave a "
                                             "non-finite output"):
        run(run_cfg, tmp_path / "run", base_dir=tmp_path)
    assert not (tmp_path / "run" / "shapes.json").exists()
    assert not list((tmp_path / "run").rglob("*.wav"))


def test_schema_walk_sees_nested_sections():
    keys = dict(RUN_KEYS)
    assert {"plots.dpi", "stream.threads", "evaluate.edge_ms", "seed", "data.end"} <= set(keys)
    assert typing.get_args(keys["data.end"])  # Optional[float]


def test_a_kernel_torch_cannot_size_is_one_line_naming_the_layer(tmp_path):
    from tests.helpers import run_script

    done = run_script("run.py", "model.layers.0.kernel_size=9223372036854775807", "data.end=2.05",
                      f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "error: model.layers.0: a ConvTranspose1d of kernel_size=9223372036854775807 has "
        "1.84e+19 weights, more than torch can size a tensor for; use a kernel that fits memory"]
