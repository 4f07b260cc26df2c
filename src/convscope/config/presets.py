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


def _preset(group: str, name: str, folder: Path) -> dict:
    path = Path(folder) / group / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConvscopeError(f"{group}={name}: no {path}; known: {', '.join(known)}")
    register_resolvers()
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)


def model_preset(name: str) -> ModelConfig:
    """configs/model/<name>.yaml as a ModelConfig (its layers are checked when planned)."""
    return to_dataclass(_preset("model", name, configs_dir()), ModelConfig, where=f"model={name}")


def data_preset(name: str) -> DataConfig:
    """configs/data/<name>.yaml as a DataConfig."""
    return to_dataclass(_preset("data", name, configs_dir()), DataConfig, where=f"data={name}")
