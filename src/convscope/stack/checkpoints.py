"""model.weights: a checkpoint file read safely, and the state_dict inside it found.

Training code rarely saves a bare state_dict: HiFi-GAN's train.py saves `{'generator': ...}`,
others `{'model': ..., 'optimizer': ..., 'epoch': ...}`. A file is read with
torch.load(weights_only=True) (no pickled code runs); when it is a dict holding exactly one entry
that is itself a state_dict, that entry is used (and logged); `model.weights_key=a.b` names the
entry otherwise. Deciding whether the state_dict fits the module is left to torch's own strict
load_state_dict (stack.user_module.load_weights), which knows compatibility rules a key
comparison does not (old `weight_g`/`weight_v` keys load into the current weight_norm).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

import torch

from convscope.errors import ConvscopeError

log = logging.getLogger("convscope")
MAX_LISTED = 6  # entry names an error lists before "(+N more)"


def read_state_dict(path: Path, weights_key: Optional[str]) -> Mapping[str, torch.Tensor]:
    """The state_dict in checkpoint `path`: the file itself, the entry `weights_key` (dotted for
    nested dicts) names, or the one entry of a dict that is a state_dict."""
    if not path.is_file():
        raise ConvscopeError(f"model.weights: {path} does not exist" if not path.exists()
                             else f"model.weights: {path} is not a file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise ConvscopeError(
            f"model.weights: {path} is not a file torch.load(weights_only=True) can read "
            f"({type(exc).__name__}: {first_line[:400]}); save a state_dict: "
            "torch.save(model.state_dict(), path)") from exc
    if weights_key is not None:
        return _entry(loaded, weights_key, path)
    if is_state_dict(loaded):
        return loaded
    candidates = [str(key) for key, value in loaded.items() if is_state_dict(value) and value] \
        if isinstance(loaded, Mapping) else []
    if len(candidates) == 1:
        log.info("model.weights: %s is a checkpoint dict; loading its entry %r, the one "
                 "state_dict in it (model.weights_key picks another entry)", path, candidates[0])
        return loaded[candidates[0]]
    if candidates:
        raise ConvscopeError(f"model.weights: {path} holds {len(candidates)} state_dicts, under "
                             f"the keys {_listed(candidates)}; pick one with "
                             f"model.weights_key={candidates[0]} (dotted for nested entries)")
    raise ConvscopeError(f"model.weights: {path} holds {describe_value(loaded)}, not a state_dict "
                         "(parameter names to tensors) nor a dict with one; save "
                         "model.state_dict(), or name the entry with model.weights_key=KEY")


def is_state_dict(value: Any) -> bool:
    """Parameter names to tensors: what module.state_dict() returns."""
    return isinstance(value, Mapping) and all(
        isinstance(key, str) and isinstance(item, torch.Tensor) for key, item in value.items())


def describe_value(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {list(value.shape)}"
    if isinstance(value, Mapping):
        return f"a {type(value).__name__} with keys {_listed([str(k) for k in value])}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def _entry(loaded: Any, weights_key: str, path: Path) -> Mapping[str, torch.Tensor]:
    found, walked = loaded, []
    for part in weights_key.split("."):
        if not isinstance(found, Mapping) or part not in found:
            where = f"its entry {'.'.join(walked)!r}" if walked else "it"
            raise ConvscopeError(f"model.weights_key: {path} has no entry {weights_key!r}: "
                                 f"{where} is {describe_value(found)}")
        found = found[part]
        walked.append(part)
    if not is_state_dict(found):
        raise ConvscopeError(f"model.weights_key: the entry {weights_key!r} of {path} is "
                             f"{describe_value(found)}, not a state_dict (parameter names to "
                             "tensors)")
    return found


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" (+{len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else "")
