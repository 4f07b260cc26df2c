"""The YAML presets in configs/ as typed configs (stack.run_model runs one on plain arrays).

For scripts that compare several models on several signals (bench_quality.py,
plot_artifacts.py) without composing a Hydra config and writing a run dir for each one.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from convscope.config.convert import register_resolvers, to_dataclass
from convscope.config.schema import DataConfig, ModelConfig
from convscope.errors import ConvscopeError
from convscope.resources import configs_dir

GLOBAL_PACKAGE = "# @package _global_"


def _preset(group: str, name: str, folder: Path) -> dict:
    """The file's content at its group's place: a `# @package _global_` file (a vocoder preset
    that also sets its data frontend) holds the group's node under its own key."""
    path = Path(folder) / group / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConvscopeError(f"{group}={name}: no {path}; known: {', '.join(known)}")
    register_resolvers()
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if not _is_global(path):
        return node
    if not isinstance(node, dict) or group not in node:
        raise ConvscopeError(f"{group}={name}: {path} is a _global_ package without a "
                             f"'{group}:' node")
    return node[group]


def _is_global(path: Path) -> bool:
    """Hydra reads the package header from the file's leading comment lines."""
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            return False
        if line.strip() == GLOBAL_PACKAGE:
            return True
    return False


def model_preset(name: str) -> ModelConfig:
    """configs/model/<name>.yaml as a ModelConfig (its layers are checked when planned); for a
    vocoder preset, its `model` node (its `data` node is for Hydra compositions)."""
    return to_dataclass(_preset("model", name, configs_dir()), ModelConfig, where=f"model={name}")


def data_preset(name: str) -> DataConfig:
    """configs/data/<name>.yaml as a DataConfig."""
    return to_dataclass(_preset("data", name, configs_dir()), DataConfig, where=f"data={name}")


def model_preset_names() -> list[str]:
    """The names configs/model/ offers (model=<name>)."""
    return sorted(path.stem for path in (configs_dir() / "model").glob("*.yaml"))


def model_preset_node(name: str) -> dict:
    """configs/model/<name>.yaml's `model` node as plain containers: quick (no schema merge,
    which costs OmegaConf seconds for a generator's nested layers), for reading its structure."""
    return _preset("model", name, configs_dir())
