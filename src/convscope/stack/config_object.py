"""model.config_json: the attribute-style config object published model classes take.

HiFi-GAN, BigVGAN and their descendants build their generator as `Generator(h)`, where `h` is
the training JSON read into an AttrDict (a dict whose keys are also attributes:
`h.upsample_rates`, `h["upsample_rates"]`, `h.get(...)`). convscope builds the same object
from the JSON file, so the published classes run unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from convscope.errors import ConvscopeError


class AttrDict(dict):
    """The published env.AttrDict: keys readable as attributes (nested objects too, which
    BigVGAN-style configs read as `h.dist_config.world_size`)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for key, value in self.items():
            if isinstance(value, dict) and not isinstance(value, AttrDict):
                self[key] = AttrDict(value)
        self.__dict__ = self  # the published trick: attributes and keys are one mapping


def read_config_json(path: Path) -> AttrDict:
    """The JSON object in `path` as an AttrDict; every failure is one line naming the key."""
    if not path.is_file():
        raise ConvscopeError(f"model.config_json: {path} does not exist" if not path.exists()
                             else f"model.config_json: {path} is not a file")
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConvscopeError(f"model.config_json: {path} is not a JSON file "
                             f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(loaded, dict):
        raise ConvscopeError(f"model.config_json: {path} holds a JSON {type(loaded).__name__}, "
                             "not an object of settings ({\"upsample_rates\": [...], ...})")
    return AttrDict(loaded)
