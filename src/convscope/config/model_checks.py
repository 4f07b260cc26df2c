"""model.*: a config stack or the user's own module, and the checkpoint layout a stack reads
and writes (checks that only raise, as config.checks, which calls check_model)."""

from __future__ import annotations

from collections.abc import Mapping

from convscope.config.schema import EXPORT_LAYOUTS, LAYOUTS, ModelConfig
from convscope.errors import ConvscopeError


def check_model(model: ModelConfig) -> None:
    """A run takes a config stack (model.layers) or the user's module (model.target), not both."""
    if model.target is not None:
        if model.layers:
            raise ConvscopeError(
                f"model.target: {model.target!r} is set together with model.layers "
                f"({len(model.layers)} layers of model {model.name}): a run takes one or the "
                "other; for your own module start from model=module")
        if not model.target.strip():
            raise ConvscopeError("model.target is empty: give package.module.Class or "
                                 "path/to/file.py:Class")
        if model.causal:
            raise ConvscopeError(f"model.causal: makes the convs of a config stack (model.layers) "
                                 f"causal; your own module {model.target!r} is built as written")
        if not isinstance(model.kwargs, Mapping):
            raise ConvscopeError(f"model.kwargs must be a mapping of keyword arguments, like "
                                 f"'model.kwargs={{channels: 8}}', got {model.kwargs!r}")
        if model.h and model.config_json is not None:
            raise ConvscopeError(f"model.h and model.config_json ({model.config_json}) both give "
                                 "the constructor's config object; keep one")
        if model.layout is not None or model.export_layout != "convscope":
            raise ConvscopeError(
                f"model.{'layout' if model.layout is not None else 'export_layout'}: maps a "
                "config stack's names to a published generator's; your own module "
                f"{model.target!r} already has its own names (weights.pt is its state_dict)")
        return
    if not model.layers:
        if model.name == "module":  # configs/model/module.yaml, chosen without its target
            raise ConvscopeError(
                "model.target: no value given: model=module runs your own nn.Module, named as "
                "model.target=package.module.Class (importable from this directory) or "
                "model.target=path/to/file.py:Class")
        raise ConvscopeError("model.layers is empty: give at least one layer, or run your own "
                             "nn.Module with model=module model.target=package.module.Class")
    for key in ("kwargs", "config_json", "h"):
        if getattr(model, key):
            raise ConvscopeError(f"model.{key} is only read with model.target (model=module), "
                                 f"which is not set; a config stack is built from model.layers")
    _check_layout(model)


def _check_layout(model: ModelConfig) -> None:
    """A config stack's checkpoint keys: which layout it reads and how weights.pt is written."""
    if model.layout is not None and model.layout not in LAYOUTS:
        raise ConvscopeError(f"model.layout must be one of {', '.join(LAYOUTS)} or null, got "
                             f"{model.layout!r}")
    if model.export_layout not in EXPORT_LAYOUTS:
        raise ConvscopeError(f"model.export_layout must be one of {', '.join(EXPORT_LAYOUTS)}, "
                             f"got {model.export_layout!r}")
    if model.export_layout == "published" and model.layout is None:
        raise ConvscopeError(f"model.export_layout=published: model {model.name} has no "
                             f"published layout (model.layout: {' | '.join(LAYOUTS)}; the "
                             "presets hifigan_v1/v2/v3 and bigvgan_v2_24k set it)")
    if model.weights_key is not None and model.weights is None:
        raise ConvscopeError(f"model.weights_key={model.weights_key} names an entry of the "
                             "checkpoint model.weights, which is not set")
