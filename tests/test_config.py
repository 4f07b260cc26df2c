"""Configs composed with Hydra's compose API, the way scripts/run.py composes them."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from omegaconf import OmegaConf

from convscope.config.checks import check_values
from convscope.config.convert import (
    normalise,
    register_configs,
    to_dataclass,
    to_learn_config,
    to_run_config,
)
from convscope.config.schema import LearnConfig, RunConfig
from convscope.errors import ConvscopeError
from convscope.pipeline.single import run
from convscope.stack.plan import plan_stack
from tests.helpers import REPO


def compose_run(*overrides: str, hydra_config: bool = False):
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "configs")):
        return compose("run", overrides=list(overrides), return_hydra_config=hydra_config)


def test_default_is_the_reference_example():
    cfg = to_run_config(compose_run())
    assert (cfg.data.path, cfg.data.sr, cfg.data.start, cfg.data.end, cfg.data.mono) == \
        (str(REPO / "data" / "sample.wav"), 16000, 2.0, 3.0, True)  # the bundled clip, absolute
    assert [layer.type for layer in cfg.model.layers] == ["ConvTranspose1d"] * 2
    plans = plan_stack(cfg.model.layers, (1, 1, 16000))
    assert plans[-1].output_shape == (1, 3, 32000)
    assert cfg.device == "cpu" and cfg.seed == 0


def test_hydra_dirs_follow_the_design():
    cfg = compose_run(hydra_config=True)
    # unresolved: resolving ${new_dir:...} claims (creates) the dir
    dirs = OmegaConf.to_container(cfg.hydra, resolve=False)
    assert dirs["run"]["dir"].startswith("${new_dir:outputs/")
    assert dirs["sweep"]["dir"].startswith("${new_dir:outputs/multirun/")
    assert cfg.hydra.job.chdir is False


@pytest.mark.parametrize("override,expected", [
    (["model.layers.1.stride=4", "model.layers.1.output_padding=3"], (1, 3, 64000)),
    (["data.start=0.5", "data.end=1.25"], (1, 3, 24000)),
    (["model=encoder_decoder"], (1, 1, 16000)),
])
def test_overrides_change_the_plan_as_the_formula_says(override, expected):
    cfg = to_run_config(compose_run(*override))
    seconds = (cfg.data.end - cfg.data.start)
    plans = plan_stack(cfg.model.layers, (1, 1, round(seconds * cfg.data.sr)))
    assert plans[-1].output_shape == expected


def test_schema_rejects_unknown_keys_and_wrong_types():
    with pytest.raises(HydraException, match="foo"):
        compose_run("model.layers.0.foo=1")
    with pytest.raises(HydraException, match="kernel_size"):
        compose_run("model.layers.0.kernel_size=abc")
    with pytest.raises(HydraException, match="nope"):
        compose_run("model=nope")


def test_value_checks_name_their_key():
    with pytest.raises(ConvscopeError, match="device must be one of cpu, cuda, auto, got 'tpu'"):
        to_run_config(compose_run("device=tpu"))
    with pytest.raises(ConvscopeError, match="data.end must be greater than data.start"):
        to_run_config(compose_run("data.start=2", "data.end=1"))
    with pytest.raises(ConvscopeError, match="audio.subtype"):
        to_run_config(compose_run("audio.subtype=MP3"))


def test_type_errors_name_their_key_in_every_conversion():
    """to_run_config, to_learn_config and the presets share config.to_dataclass's messages."""
    layers = [{"type": "Tanh"}]
    with pytest.raises(ConvscopeError, match=r"^config data\.sr: Value 'abc' of type 'str'"):
        to_run_config({"model": {"layers": layers}, "data": {"sr": "abc"}})
    with pytest.raises(ConvscopeError, match=r"^config bogus: Key 'bogus' not in 'RunConfig'"):
        to_run_config({"model": {"layers": layers}, "bogus": 1})
    with pytest.raises(ConvscopeError, match=r"^config learn\.steps: Value 'x' of type 'str'"):
        to_learn_config({"model": {"layers": layers}, "learn": {"steps": "x"}})
    with pytest.raises(ConvscopeError, match=r"^model=m: Value 'x' of type 'str'"):
        to_dataclass({"steps": "x"}, LearnConfig, key_prefix="learn", where="model=m")
    assert to_dataclass({"steps": 3, "hydra": {"a": 1}}, LearnConfig).steps == 3


def test_hydra_node_is_dropped_before_resolving():
    """hydra.sweep.subdir interpolates ${hydra.job.num}, which compose leaves missing."""
    cfg = compose_run("seed=3", hydra_config=True)
    assert "hydra" in cfg and to_run_config(cfg).seed == 3


def test_stages_can_be_switched_off(tmp_path):
    """Compose with Hydra's config (as the entry script sees it) and run into tmp_path."""
    cfg = compose_run("plots.enabled=false", "audio.enabled=false", "save.weights=false",
                      "report=false", "evaluate.enabled=false",
                      f"hydra.run.dir={tmp_path}", hydra_config=True)
    HydraConfig().set_config(cfg)
    result = run(to_run_config(cfg), tmp_path, base_dir=REPO)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shapes.json"]
    assert result.shapes["output"]["shape"] == [1, 3, 32000]


def test_checks_only_raise_and_normalise_comes_first():
    """check_values reads a config and changes nothing; normalise makes YAML's True "true"."""
    cfg = to_dataclass({"model": {"layers": [{"type": "Tanh"}]},
                        "stream": {"enabled": True}, "evaluate": {"enabled": "False"}}, RunConfig)
    with pytest.raises(ConvscopeError, match="stream.enabled must be one of auto, true, false"):
        check_values(cfg)
    assert (cfg.stream.enabled, cfg.evaluate.enabled) == ("True", "False")  # untouched
    normalised = normalise(cfg)
    check_values(normalised)
    assert (normalised.stream.enabled, normalised.evaluate.enabled) == ("true", "false")
