"""model.weights: checkpoints load as torch's strict load_state_dict loads them.

The published case: HiFi-GAN's train.py saves `{'generator': generator.state_dict()}` from a
Generator built with the old torch.nn.utils.weight_norm (keys `conv_pre.weight_g`/`weight_v`);
modern code builds the same Generator with torch.nn.utils.parametrizations.weight_norm (keys
`conv_pre.parametrizations.weight.original0`/`1`), and torch's strict load accepts the old keys.
The generator is tests/reference_generators.py's, written in the published models.py structure;
the oracle is that generator's own forward in torch on the frames the run computed.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from torch import nn

import convscope
from convscope.audio.features import compute_features
from convscope.audio.segment import load_segment
from convscope.config.schema import DataConfig
from convscope.errors import ConvscopeError
from convscope.resources import bundled
from tests import reference_generators
from tests.helpers import run_script
from tests.reference_generators import HIFIGAN_CONFIGS, HifiGanGenerator

# hifigan_v1's frontend (meldataset.py's log mel, config_v1.json's keys) on a quarter second
FRONTEND = {"features": "log_mel", "sr": 22050, "n_fft": 1024, "hop_length": 256,
            "win_length": 1024, "n_mels": 80, "fmin": 0.0, "fmax": 8000.0, "center": False,
            "start": 2.0, "end": 2.25}
FRONTEND_OVERRIDES = [f"data.{key}={value}" for key, value in FRONTEND.items()]
QUIET = ["audio.subtype=FLOAT", "plots.enabled=false", "report=false", "evaluate.enabled=false"]
MODERN_MODULE = '''
from tests.reference_generators import HIFIGAN_CONFIGS, HifiGanGenerator


class GeneratorV1(HifiGanGenerator):
    """HiFi-GAN V1 built with torch's current parametrizations.weight_norm."""

    def __init__(self, channels=512):
        super().__init__({**HIFIGAN_CONFIGS["hifigan_v1"], "upsample_initial_channel": channels})
'''
TARGET = "modern.py:GeneratorV1"


@pytest.fixture
def user_dir(tmp_path, monkeypatch):
    (tmp_path / "modern.py").write_text(textwrap.dedent(MODERN_MODULE))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("convscope_user_modern", None)


def published_generator(monkeypatch, channels=512) -> nn.Module:
    """The generator as the published models.py builds it: torch.nn.utils.weight_norm, so its
    state_dict has weight_g / weight_v keys."""
    with monkeypatch.context() as patch:
        patch.setattr(reference_generators, "weight_norm", torch.nn.utils.weight_norm)
        torch.manual_seed(7)  # not the run's seed: the output shows the file was loaded
        return HifiGanGenerator({**HIFIGAN_CONFIGS["hifigan_v1"],
                                 "upsample_initial_channel": channels})


def run_error(overrides: list[str]) -> str:
    with pytest.raises(ConvscopeError) as caught:
        target = [] if any(o.startswith("model.target=") for o in overrides) \
            else [f"model.target={TARGET}"]
        convscope.run(["model=module", *target, *FRONTEND_OVERRIDES, *QUIET, *overrides],
                      out_dir="refused")
    message = str(caught.value)
    assert "\n" not in message
    assert not (Path("refused") / "audio").exists()
    assert not (Path("refused") / "weights.pt").exists()
    return message


@pytest.mark.filterwarnings("ignore:.*torch.nn.utils.weight_norm.*:FutureWarning")
def test_published_checkpoint_with_old_weight_norm_loads_into_modern_code(user_dir, monkeypatch):
    published = published_generator(monkeypatch)
    state = published.state_dict()
    assert "conv_pre.weight_g" in state and "ups.0.weight_v" in state
    torch.save({"generator": state}, user_dir / "g_02500000")  # train.py's save_checkpoint

    convscope.run(["model=module", f"model.target={TARGET}", "model.weights=g_02500000",
                   *FRONTEND_OVERRIDES, *QUIET], out_dir="out")
    shapes = json.loads((user_dir / "out" / "shapes.json").read_text())
    frames = compute_features(load_segment(DataConfig(path=bundled("sample.wav"), **FRONTEND),
                                           user_dir), DataConfig(**FRONTEND)).samples
    with torch.no_grad():
        expected = published(torch.from_numpy(frames)[None])[0, 0].numpy()
    (name,) = [f for f in shapes["audio"]["files"] if f != "audio/input.wav"]
    got = soundfile.read(str(user_dir / "out" / name), dtype="float32")[0]
    assert got.shape == expected.shape == (256 * frames.shape[-1],)
    assert 0.01 < np.std(expected) < 0.9  # not silent, not saturated: the comparison means something
    np.testing.assert_allclose(got / shapes["audio"]["gain"], expected, atol=1e-5)


def test_the_one_state_dict_of_a_checkpoint_is_found_and_logged(user_dir, caplog):
    torch.manual_seed(3)
    module = HifiGanGenerator({**HIFIGAN_CONFIGS["hifigan_v1"], "upsample_initial_channel": 16})
    optimizer = torch.optim.AdamW(module.parameters())
    torch.save({"model": module.state_dict(), "optim": optimizer.state_dict(), "steps": 3},
               user_dir / "ckpt.pt")
    caplog.set_level("INFO", logger="convscope")
    convscope.run(["model=module", f"model.target={TARGET}", "model.kwargs={channels: 16}",
                   "model.weights=ckpt.pt", *FRONTEND_OVERRIDES, *QUIET], out_dir="out")
    assert "loading its entry 'model'" in caplog.text
    saved = torch.load(user_dir / "out" / "weights.pt", weights_only=True)
    for key, value in module.state_dict().items():
        torch.testing.assert_close(saved[key], value, rtol=0, atol=0)


def test_weights_key_picks_a_nested_entry_and_ambiguity_lists_the_candidates(user_dir):
    torch.manual_seed(4)
    module = HifiGanGenerator({**HIFIGAN_CONFIGS["hifigan_v1"], "upsample_initial_channel": 16})
    other = nn.Conv1d(1, 1, 3).state_dict()
    torch.save({"nets": {"g": module.state_dict(), "d": other}, "ema": other},
               user_dir / "nested.pt")
    convscope.run(["model=module", f"model.target={TARGET}", "model.kwargs={channels: 16}",
                   "model.weights=nested.pt", "model.weights_key=nets.g", *FRONTEND_OVERRIDES,
                   *QUIET], out_dir="out")
    saved = torch.load(user_dir / "out" / "weights.pt", weights_only=True)
    torch.testing.assert_close(saved["conv_post.bias"], module.state_dict()["conv_post.bias"])

    torch.save({"mpd": other, "msd": other, "steps": 1}, user_dir / "two.pt")
    message = run_error(["model.kwargs={channels: 16}", "model.weights=two.pt"])
    assert message.startswith("model.weights: ")
    assert "holds 2 state_dicts, under the keys mpd, msd" in message
    assert "model.weights_key=mpd" in message
    message = run_error(["model.kwargs={channels: 16}", "model.weights=nested.pt",
                         "model.weights_key=nets.generator"])
    assert message.startswith("model.weights_key: ")
    assert "no entry 'nets.generator': its entry 'nets' is a dict with keys g, d" in message


def test_missing_unexpected_and_wrong_shape_keys_are_one_line_each(user_dir):
    module = HifiGanGenerator({**HIFIGAN_CONFIGS["hifigan_v1"], "upsample_initial_channel": 16})
    state = module.state_dict()
    missing = [key for key in state if key.startswith("conv_post.")]
    for key in missing:
        del state[key]
    torch.save(state, user_dir / "missing.pt")
    message = run_error(["model.kwargs={channels: 16}", "model.weights=missing.pt"])
    assert message == (f"model.weights: {user_dir / 'missing.pt'} does not fit {TARGET}: "
                       f"missing keys ({len(missing)}): {', '.join(missing)}")

    state = {**module.state_dict(), "extra.weight": torch.zeros(1)}
    torch.save(state, user_dir / "extra.pt")
    message = run_error(["model.kwargs={channels: 16}", "model.weights=extra.pt"])
    assert message.endswith("does not fit modern.py:GeneratorV1: unexpected keys (1): "
                            "extra.weight")

    state = {**module.state_dict(), "conv_pre.bias": torch.zeros(99)}
    torch.save(state, user_dir / "shape.pt")
    message = run_error(["model.kwargs={channels: 16}", "model.weights=shape.pt"])
    assert message.endswith("shape mismatches (1): conv_pre.bias [99] in the file, [16] in the "
                            "model")


def test_a_file_that_is_not_a_checkpoint_is_one_error_line_and_exit_2(user_dir):
    (user_dir / "notes.pt").write_text("not a checkpoint")
    # a subprocess does not see the tests package: a self-contained module
    (user_dir / "tiny.py").write_text("from torch import nn\n\n\nclass Tiny(nn.Sequential):\n"
                                      "    def __init__(self):\n"
                                      "        super().__init__(nn.ConvTranspose1d(80, 1, 4, 2, 1))\n")
    result = run_script("run.py", "model=module", "model.target=tiny.py:Tiny",
                        "model.weights=notes.pt", "hydra.run.dir=out", *FRONTEND_OVERRIDES,
                        *QUIET, cwd=user_dir)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: model.weights: {user_dir / 'notes.pt'} is not a file "
                           "torch.load(weights_only=True) can read")
    assert not (user_dir / "out" / "shapes.json").exists()
    assert not (user_dir / "out" / "audio").exists()


# config_v1.json of the published repository, as train.py reads it into an AttrDict
CONFIG_V1 = {
    "resblock": "1", "num_gpus": 0, "batch_size": 16, "learning_rate": 0.0002, "adam_b1": 0.8,
    "adam_b2": 0.99, "lr_decay": 0.999, "seed": 1234,
    "upsample_rates": [8, 8, 2, 2], "upsample_kernel_sizes": [16, 16, 4, 4],
    "upsample_initial_channel": 512, "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "segment_size": 8192, "num_mels": 80, "num_freq": 1025, "n_fft": 1024, "hop_size": 256,
    "win_size": 1024, "sampling_rate": 22050, "fmin": 0, "fmax": 8000, "fmax_for_loss": None,
    "num_workers": 4,
    "dist_config": {"dist_backend": "nccl", "dist_url": "tcp://localhost:54321", "world_size": 1},
}
# Constructors as published code writes them: Generator(h) reading h.<key> (models.py), and a
# keyword-only h, which convscope passes by name
CONFIG_CLASSES = '''
from tests.reference_generators import HifiGanGenerator

KEYS = ("resblock", "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel",
        "resblock_kernel_sizes", "resblock_dilation_sizes")


class Generator(HifiGanGenerator):
    def __init__(self, h):
        self_check = h.dist_config.world_size  # nested entries are attributes too
        super().__init__({key: getattr(h, key) for key in KEYS})
        self.world_size = self_check


class KeywordGenerator(HifiGanGenerator):
    def __init__(self, *, h, scale=1):
        super().__init__({key: getattr(h, key) for key in KEYS})
'''


def test_config_json_builds_the_published_constructor_argument(user_dir):
    (user_dir / "config_v1.json").write_text(json.dumps(CONFIG_V1))
    (user_dir / "published_h.py").write_text(textwrap.dedent(CONFIG_CLASSES))
    for target, out in (("published_h.py:Generator", "positional"),
                        ("published_h.py:KeywordGenerator", "keyword")):
        convscope.run(["model=module", f"model.target={target}", "model.config_json=config_v1.json",
                       *FRONTEND_OVERRIDES, *QUIET, "seed=5"], out_dir=out)
    torch.manual_seed(5)  # build_module seeds with the run's seed before calling the class
    expected = HifiGanGenerator({key: CONFIG_V1[key] for key in HIFIGAN_CONFIGS["hifigan_v1"]})
    frames = compute_features(load_segment(DataConfig(path=bundled("sample.wav"), **FRONTEND),
                                           user_dir), DataConfig(**FRONTEND)).samples
    with torch.no_grad():
        audio = expected(torch.from_numpy(frames)[None])[0, 0].numpy()
    for out in ("positional", "keyword"):
        saved = torch.load(user_dir / out / "weights.pt", weights_only=True)
        assert saved.keys() == expected.state_dict().keys()
        for key, value in expected.state_dict().items():
            torch.testing.assert_close(saved[key], value, rtol=0, atol=0)
        shapes = json.loads((user_dir / out / "shapes.json").read_text())
        (name,) = [f for f in shapes["audio"]["files"] if f != "audio/input.wav"]
        got = soundfile.read(str(user_dir / out / name), dtype="float32")[0]
        np.testing.assert_allclose(got / shapes["audio"]["gain"], audio, atol=1e-5)


def test_a_bad_config_json_is_one_error_line(user_dir):
    (user_dir / "list.json").write_text("[8, 8, 2, 2]")
    (user_dir / "broken.json").write_text('{"upsample_rates": [8, 8,')
    message = run_error(["model.config_json=list.json"])
    assert message == (f"model.config_json: {user_dir / 'list.json'} holds a JSON list, not an "
                       'object of settings ({"upsample_rates": [...], ...})')
    message = run_error(["model.config_json=broken.json"])
    assert message.startswith(f"model.config_json: {user_dir / 'broken.json'} is not a JSON "
                              "file (JSONDecodeError")
    message = run_error(["model.config_json=absent.json"])
    assert message == f"model.config_json: {user_dir / 'absent.json'} does not exist"
    # a class that takes no config object: Python's words, the call shown without the object
    (user_dir / "config_v1.json").write_text(json.dumps(CONFIG_V1))
    (user_dir / "plain.py").write_text("from torch import nn\n\n\nclass Plain(nn.Module):\n"
                                       "    def __init__(self):\n        super().__init__()\n")
    message = run_error(["model.target=plain.py:Plain", "model.config_json=config_v1.json"])
    assert message.startswith("model.kwargs: plain.py:Plain rejects "
                              "plain.py:Plain(<model.config_json>): too many positional")


def test_model_h_builds_the_object_config_json_builds(user_dir):
    """model.h={...} on the command line: the same attribute-style h (nested entries too) as
    the JSON file, so the published Generator(h) gets the same hyper-parameters."""
    (user_dir / "published_h.py").write_text(textwrap.dedent(CONFIG_CLASSES))
    small = {**HIFIGAN_CONFIGS["hifigan_v1"], "upsample_initial_channel": 32,
             "dist_config": {"world_size": 1}}
    (user_dir / "small.json").write_text(json.dumps(small))
    h = ("model.h={resblock: '1', upsample_rates: [8, 8, 2, 2], upsample_kernel_sizes: "
         "[16, 16, 4, 4], upsample_initial_channel: 32, resblock_kernel_sizes: [3, 7, 11], "
         "resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "
         "dist_config: {world_size: 1}}")
    for source, out in (("model.config_json=small.json", "json"), (h, "h")):
        convscope.run(["model=module", "model.target=published_h.py:Generator", source,
                       *FRONTEND_OVERRIDES, *QUIET, "seed=5"], out_dir=out)
    torch.manual_seed(5)
    expected = HifiGanGenerator(small).state_dict()
    for out in ("json", "h"):
        saved = torch.load(user_dir / out / "weights.pt", weights_only=True)
        assert saved.keys() == expected.keys()
        for key, value in expected.items():
            torch.testing.assert_close(saved[key], value, rtol=0, atol=0)
    message = run_error(["model.target=published_h.py:Generator", h,
                         "model.config_json=small.json"])
    assert message == ("model.h and model.config_json (small.json) both give the constructor's "
                       "config object; keep one")
