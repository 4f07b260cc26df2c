"""Hydra's composed config -> validated dataclasses: library code never reaches into a DictConfig."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from convscope.config.bounds import FLOAT32_MAX, check_numbers
from convscope.config.checks import check_chunks, check_learn, check_values
from convscope.config.schema import (
    ChunksConfig,
    ChunksRunConfig,
    DesignConfig,
    LayerConfig,
    LearnConfig,
    LearnRunConfig,
    RunConfig,
)
from convscope.errors import ConvscopeError
from convscope.resources import bundled
from convscope.rundir import claim_new_dir


def register_configs() -> None:
    """Put the schemas in Hydra's ConfigStore; configs/run.yaml and learn.yaml list theirs first."""
    from hydra.core.config_store import ConfigStore  # Hydra only where configs are composed

    register_resolvers()
    ConfigStore.instance().store(name="run_schema", node=schema_node(RunConfig))
    ConfigStore.instance().store(name="learn_schema", node=schema_node(LearnRunConfig))
    ConfigStore.instance().store(name="design_schema", node=OmegaConf.structured(DesignConfig))


def register_chunks_schema() -> None:
    """scripts/chunks.py only: configs/chunks.yaml composes run.yaml (so `model=`, `data=` and
    `model.layers...` overrides mean the same), and run.yaml names `run_schema` first. A later
    schema in the defaults list would reset every value run.yaml set, and an earlier subclass
    refuses the base class merged onto it, so this process's `run_schema` is the run schema
    plus the `chunks` section instead."""
    from hydra.core.config_store import ConfigStore  # Hydra only where configs are composed

    register_configs()
    ConfigStore.instance().store(name="run_schema", node=schema_node(ChunksRunConfig))


def schema_node(schema: type) -> DictConfig:
    """The schema as Hydra's node, with model.kwargs and model.h open to new keys: they hold
    the user's constructor arguments, which no schema can list. Hydra's struct mode (unknown
    keys are errors) would refuse 'model.kwargs={channels: 8}'; everywhere else it applies."""
    node = OmegaConf.structured(schema)
    OmegaConf.set_struct(node.model.kwargs, False)
    OmegaConf.set_struct(node.model.h, False)  # the published config object's keys, as kwargs
    return node


def register_resolvers() -> None:
    """${bundled:sample.wav} in configs/data/*.yaml: the absolute path of a clip convscope ships,
    so the presets work from any directory and from an installed package.
    ${new_dir:outputs/...} in hydra.run.dir and hydra.sweep.dir: a dir no other process has
    (outputs/<date>/<time>, else <time>-1, -2, ...); cached, as Hydra's ${now:}, so that the
    copies Hydra makes of the config (and pickles to launcher workers) keep one answer."""
    OmegaConf.register_new_resolver("bundled", bundled, replace=True)
    OmegaConf.register_new_resolver("new_dir", claim_new_dir, replace=True, use_cache=True)


def to_run_config(cfg: DictConfig | dict) -> RunConfig:
    """Validate a composed config (Hydra's node, if present, is ignored) and return dataclasses.

    The layers are converted one at a time against one LayerConfig schema node: merging a
    generator's hundreds of nested layers into the whole RunConfig schema at once costs OmegaConf
    about 2 s (HiFi-GAN V1), one layer at a time about a quarter of that."""
    container = without_hydra(cfg)
    model = container.get("model") if isinstance(container, dict) else None
    layers = model.get("layers") if isinstance(model, dict) else None
    if isinstance(layers, list):
        container = {**container, "model": {**model, "layers": []}}
    run_cfg = to_dataclass(container, RunConfig)
    if isinstance(layers, list):
        run_cfg.model.layers = to_layers(layers, "model.layers")
    run_cfg = normalise(run_cfg)
    check_values(run_cfg)
    return run_cfg


def to_layers(specs: list, key: str) -> list[LayerConfig]:
    """Layer dicts (blocks' `layers` nested) as LayerConfigs; errors name the full key
    (`config model.layers.3.layers.1.kernel_size: ...`)."""
    schema = OmegaConf.structured(LayerConfig)
    return [_to_layer(schema, spec, f"{key}.{index}") for index, spec in enumerate(specs)]


def _to_layer(schema: DictConfig, spec: Any, key: str) -> LayerConfig:
    inner = None
    if isinstance(spec, dict) and isinstance(spec.get("layers"), list):
        spec = dict(spec)
        inner = spec.pop("layers")
    try:
        layer = OmegaConf.to_object(OmegaConf.merge(schema, spec))
    except OmegaConfBaseException as exc:
        sub = str(getattr(exc, "full_key", None) or "")
        raise ConvscopeError(f"config {key}{'.' + sub if sub else ''}: "
                             f"{str(exc).splitlines()[0]}") from exc
    # NaN alpha, an alpha float32 cannot hold, a kernel_size beyond 64 bits: named here
    check_numbers(layer, key, FLOAT32_MAX)
    if inner is not None:
        layer.layers = [_to_layer(schema, child, f"{key}.layers.{i}")
                        for i, child in enumerate(inner)]
    return layer


def normalise(cfg: RunConfig) -> RunConfig:
    """One spelling per value, before the checks: the auto/true/false modes are str fields, and
    YAML's true/false (or a Python bool) reach them as "True"/"False"."""
    return replace(cfg, stream=replace(cfg.stream, enabled=_mode(cfg.stream.enabled)),
                   evaluate=replace(cfg.evaluate, enabled=_mode(cfg.evaluate.enabled)))


def _mode(value: Any) -> str:
    return str(value).lower()


def to_learn_config(cfg: DictConfig | dict) -> tuple[RunConfig, LearnConfig]:
    """Validate scripts/learn.py's composed config: the run part, then the `learn` section."""
    run_cfg, learn_cfg = _run_and_section(cfg, "learn", LearnConfig,
                                          "scripts/learn.py fits config stacks (model.layers) only")
    check_learn(learn_cfg)
    return run_cfg, learn_cfg


def to_design_config(cfg: DictConfig | dict) -> DesignConfig:
    """scripts/design.py's composed config as its dataclass (values: convscope.designer)."""
    return to_dataclass(cfg, DesignConfig)


def to_chunks_config(cfg: DictConfig | dict) -> tuple[RunConfig, ChunksConfig]:
    """Validate scripts/chunks.py's composed config: the run part, then the `chunks` section."""
    run_cfg, chunks_cfg = _run_and_section(cfg, "chunks", ChunksConfig)  # model=module too
    check_chunks(chunks_cfg)
    if run_cfg.tensorboard and not run_cfg.plots.enabled:  # refused before the run, not after
        raise ConvscopeError("tensorboard=true: the chunk debugger's events are its figure, "
                             "plots/chunk_errors.png, which plots.enabled=false turns off")
    return run_cfg, chunks_cfg


def _run_and_section(cfg: DictConfig | dict, section: str, schema: type,
                     tool: Optional[str] = None) -> tuple[RunConfig, Any]:
    """A tool's config that composes run.yaml plus its own `section`: the run part validated as
    a run's, then the section; a tool that works on config stacks only (`tool` says so) refuses
    model.target."""
    container = without_hydra(cfg)
    section_values = container.pop(section, None) or {}
    run_cfg = to_run_config(container)
    if tool is not None and run_cfg.model.target is not None:
        raise ConvscopeError(f"model.target: {tool}, not your own module "
                             f"{run_cfg.model.target!r}")
    return run_cfg, to_dataclass(section_values, schema, key_prefix=section)


def without_hydra(cfg: DictConfig | dict) -> dict:
    """A composed config as a plain dict, without Hydra's own `hydra` node.

    The node is dropped before anything is resolved: some of its values interpolate keys Hydra
    only sets when a job runs (hydra.sweep.subdir is ${hydra.job.num}), missing at compose time.
    """
    if isinstance(cfg, DictConfig):
        ours = OmegaConf.masked_copy(cfg, [key for key in cfg.keys() if key != "hydra"])
        return OmegaConf.to_container(ours, resolve=True)
    if hasattr(cfg, "items"):
        return {key: value for key, value in cfg.items() if key != "hydra"}
    return cfg  # not a mapping: left for OmegaConf.merge to reject


def to_dataclass(cfg: DictConfig | dict, schema: type, key_prefix: str = "",
                 where: Optional[str] = None) -> Any:
    """`cfg` (without its `hydra` node) merged into the dataclass `schema`, as that dataclass.

    Every float is finite and every integer fits 64 bits (config.bounds), the error naming the key.
    OmegaConf's type and unknown-key errors become ConvscopeErrors naming the key:
    "config <key_prefix>.<key>: <first line of OmegaConf's message>" ("config <key_prefix>: ..."
    when OmegaConf names no key). With `where` (a preset file, say) the message is
    "<where>: <first line>" instead.
    """
    container = without_hydra(cfg)
    try:
        converted = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), container))
    except OmegaConfBaseException as exc:
        reason = str(exc).splitlines()[0]
        if where is not None:
            raise ConvscopeError(f"{where}: {reason}") from exc
        key = ".".join(part for part in (key_prefix, str(getattr(exc, "full_key", None) or ""))
                       if part)
        raise ConvscopeError(f"config {key}: {reason}" if key else f"config {reason}") from exc
    check_numbers(converted, key_prefix)
    return converted
