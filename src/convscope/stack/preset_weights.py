"""model.weights for a config stack: its own weights.pt, or a published checkpoint through the
preset's layout (stack.layouts); model.export_layout=published writes the published names back.

Everything is checked before the stack is touched: keys no rule maps, preset parameters the file
leaves unset and tensors of the wrong shape are one error line, naming the first few of each, the
rule that mapped them and, when the file fits another preset, that preset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from convscope.config.schema import ModelConfig
from convscope.errors import ConvscopeError
from convscope.stack.build import build_stack
from convscope.stack.checkpoints import read_state_dict
from convscope.stack.layouts import (
    SOURCES,
    Entry,
    name_table,
    preset_leaf,
    published_leaf,
    split_key,
)
from convscope.stack.preset_signatures import looks_like

log = logging.getLogger("convscope")
MAX_LISTED = 4  # keys an error names per kind before "(+N more)"
WEIGHT_NORM = ("parametrizations.weight.original0", "parametrizations.weight.original1")


def load_stack_weights(stack: nn.Module, model: ModelConfig, path: Path) -> None:
    """Fill the built config `stack` from checkpoint `path`: its own layout (a run's weights.pt)
    strictly as torch loads it, else the published layout of model.layout."""
    state = read_state_dict(path, model.weights_key)
    own = stack.state_dict()
    if set(state) & set(own) or model.layout is None:
        _load_own(stack, state, path, model)
        log.info("model.weights: %s loaded into model %s (its own layout)", path, model.name)
        return
    translated, buffers = translate(stack, state, path, model)
    stack.load_state_dict(translated, strict=True)
    named = dict(stack.named_buffers())
    with torch.no_grad():
        for name, value in buffers.items():
            named[name].copy_(value)
    log.info("model.weights: %s loaded into model %s through the %s layout (%s): %d tensors",
             path, model.name, model.layout, SOURCES[model.layout], len(state))


def _load_own(stack: nn.Module, state: Mapping[str, torch.Tensor], path: Path,
              model: ModelConfig) -> None:
    own = stack.state_dict()
    missing = [key for key in own if key not in state]
    unexpected = [key for key in state if key not in own]
    shapes = [f"{key} {list(state[key].shape)} in the file, {list(own[key].shape)} in the "
              "model" for key in own if key in state and state[key].shape != own[key].shape]
    if missing or unexpected or shapes:
        hint = "" if model.layout is not None else (
            f"; model {model.name} has no published layout (model.layout: hifigan | bigvgan), "
            "so only its own weights.pt names load")
        raise ConvscopeError(f"model.weights: {path} does not fit model {model.name}: "
                             f"{_problems(missing, unexpected, shapes)}{hint}")
    stack.load_state_dict(state, strict=True)


def translate(stack: nn.Module, state: Mapping[str, torch.Tensor], path: Path,
              model: ModelConfig) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The published `state` under the preset's names (parameters, persistent buffers) and the
    Kaiser taps it holds (the preset keeps them as non-persistent buffers)."""
    table = name_table(stack, model.layout)
    by_published = {entry.published: entry for entry in table}
    own = stack.state_dict()
    all_buffers = dict(stack.named_buffers())
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    unexpected: list[str] = []
    unmapped: list[str] = []  # the unexpected keys no rule maps (the others: leaves it lacks)
    for key, value in state.items():
        found = split_key(key, by_published)
        if found is None or preset_leaf(found[0], found[1]) is None:
            unexpected.append(key)
            unmapped.append(key)
            continue
        grouped.setdefault(found[0].published, {})[found[1]] = value
    translated: dict[str, torch.Tensor] = {}
    buffers: dict[str, torch.Tensor] = {}
    for published, leaves in grouped.items():
        entry = by_published[published]
        for leaf, value in _module_leaves(entry, leaves, own).items():
            name = f"{entry.preset}.{leaf}"
            if name in own:
                translated[name] = value
            elif name in all_buffers:  # the Kaiser taps
                buffers[name] = value
            else:  # a leaf the preset's module lacks (conv_post.bias where bias is false)
                unexpected.append(_published_name(entry, name))
    expected = {f"{e.preset}.{leaf}": e for e in table for leaf in _own_leaves(e, own)}
    missing = [_published_name(entry, key) for key, entry in expected.items()
               if key not in translated]
    missing += [key for key in own if key not in expected and key not in translated]
    shapes = []
    for key, value in {**translated, **buffers}.items():
        target = own[key] if key in own else all_buffers[key]
        if value.shape != target.shape:
            name = _published_name(expected[key], key) if key in expected else key
            shapes.append(f"{name} {list(value.shape)} in the file, {list(target.shape)} in "
                          "the model")
    if missing or unexpected or shapes:
        raise ConvscopeError(_mismatch_line(path, model, state, (missing, unexpected, shapes),
                                            unmapped, expected))
    return translated, buffers


def _module_leaves(entry: Entry, leaves: dict[str, torch.Tensor],
                   own: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A published module's tensors as the preset module holds them: weight norm's old or
    current names to the parametrization, a plain weight split into g and v (or a g and v pair
    merged, for a preset conv without weight norm)."""
    wants_norm = f"{entry.preset}.{WEIGHT_NORM[0]}" in own
    out: dict[str, torch.Tensor] = {}
    for leaf, value in leaves.items():
        target = preset_leaf(entry, leaf)
        if leaf == "weight" and wants_norm:
            out[WEIGHT_NORM[0]] = torch.linalg.vector_norm(
                value, dim=tuple(range(1, value.dim())), keepdim=True)
            out[WEIGHT_NORM[1]] = value
        elif target in WEIGHT_NORM and not wants_norm:
            out[target] = value  # merged below
        elif target is not None:
            out[target] = value
    if not wants_norm and all(name in out for name in WEIGHT_NORM):
        g, v = out.pop(WEIGHT_NORM[0]), out.pop(WEIGHT_NORM[1])
        out["weight"] = torch._weight_norm(v, g, 0)
    return out


def _own_leaves(entry: Entry, own: Mapping[str, torch.Tensor]) -> list[str]:
    prefix = entry.preset + "."
    return [key[len(prefix):] for key in own if key.startswith(prefix)]


def _published_name(entry: Entry, key: str) -> str:
    leaf = key[len(entry.preset) + 1:]
    return f"{entry.published}.{published_leaf(entry, leaf) or leaf}"


def _mismatch_line(path: Path, model: ModelConfig, state: Mapping[str, torch.Tensor],
                   problems: tuple[list[str], list[str], list[str]], unmapped: list[str],
                   expected: dict[str, Entry]) -> str:
    missing, unexpected, shapes = problems
    similar = looks_like(state, model.name)
    rule = next((e.rule for key, e in expected.items()
                 if _published_name(e, key) in missing[:1]), None)
    rules = f"; first missing by the rule {rule}" if rule else ""
    if unmapped:
        rules += f"; no rule of the {model.layout} layout maps {unmapped[0]}"
    looks = f"; the file looks like model={similar}, not model={model.name}" if similar else ""
    return (f"model.weights: {path} does not fit model={model.name} read as the published "
            f"{model.layout} layout ({SOURCES[model.layout]}){looks}: "
            f"{_problems(missing, unexpected, shapes)}{rules}")


def _problems(missing: list[str], unexpected: list[str], shapes: list[str]) -> str:
    parts = [f"{label} ({len(items)}): {_listed(items)}" for label, items in (
        ("missing keys", missing), ("unexpected keys", unexpected),
        ("shape mismatches", shapes)) if items]
    return "; ".join(parts)


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" (+{len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else "")


def published_state_dict(stack: nn.Module, model: ModelConfig) -> dict[str, torch.Tensor]:
    """model.export_layout=published: the stack's tensors under the published code's names, with
    weight norm as it saves it (weight_g / weight_v) and the Kaiser taps it keeps as buffers."""
    if model.layout is None:
        raise ConvscopeError(f"model.export_layout=published: model {model.name} has no "
                             "published layout (model.layout: hifigan | bigvgan; the presets "
                             "hifigan_v1/v2/v3 and bigvgan_v2_24k set it)")
    table = name_table(stack, model.layout)
    tensors = {**dict(stack.named_buffers()), **stack.state_dict()}
    out: dict[str, torch.Tensor] = {}
    for entry in table:
        prefix = entry.preset + "."
        for key, value in tensors.items():
            if key.startswith(prefix):
                leaf = published_leaf(entry, key[len(prefix):])
                if leaf is not None:
                    out[f"{entry.published}.{leaf}"] = value.detach().clone()
    return out


def build_with_weights(plans: list, seed: int, model: ModelConfig) -> nn.Sequential:
    """The seeded stack, then model.weights loaded into it when given (a relative path is
    relative to the working directory: the entry points make it absolute first)."""
    stack = build_stack(plans, seed)
    if model.weights is not None:
        load_stack_weights(stack, model, Path(model.weights).expanduser())
    return stack


def weights_to_save(stack: nn.Module, model: ModelConfig) -> dict:
    """weights.pt's content: the stack's state_dict, or (model.export_layout=published) the
    published names wrapped as the published training code saves them, {'generator': ...}."""
    if model.export_layout == "published":
        return {"generator": published_state_dict(stack, model)}
    return stack.state_dict()
