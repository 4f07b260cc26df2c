"""docs/configuration.md is scripts/config_reference.py's output, lists every schema key, and
the bounds it states are the ones the checks enforce."""

from __future__ import annotations

import re
import subprocess
import sys
import typing
from dataclasses import fields, is_dataclass

import pytest

from convscope.config import schema
from tests.helpers import REPO

REFERENCE = REPO / "docs" / "configuration.md"


def _keys(cls: type, prefix: str = "") -> list[str]:
    hints, keys = typing.get_type_hints(cls), []
    for item in fields(cls):
        kind = hints[item.name]
        if is_dataclass(kind):
            keys += _keys(kind, f"{prefix}{item.name}.")
        else:
            keys.append(f"{prefix}{item.name}")
    return keys


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        cells = re.split(r"(?<!\\)\|", line)
        if len(cells) == 7 and cells[1].strip().startswith("`"):
            rows[cells[1].strip().strip("`")] = [c.strip() for c in cells[2:6]]
    return rows


def test_the_committed_reference_is_what_the_script_writes():
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "config_reference.py")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == REFERENCE.read_text(encoding="utf-8"), (
        "docs/configuration.md is stale: python scripts/config_reference.py --write "
        "docs/configuration.md")


def test_every_schema_key_is_listed_with_its_default():
    rows = _rows()
    expected = (_keys(schema.LearnRunConfig) + _keys(schema.ChunksRunConfig)
                + _keys(schema.DesignConfig)
                + [f"model.layers.<i>.{key}" for key in _keys(schema.LayerConfig)])
    missing = [key for key in dict.fromkeys(expected) if key not in rows]
    assert not missing, missing
    assert rows["plots.dpi"][0] == "`100`" and rows["stream.mode"][0] == "`overlap`"
    assert rows["learn.steps"][0] == "`500`" and rows["hop"][0] == "`null`"
    assert "one feature-map figure per layer" in rows["plots.enabled"][3]  # configs/run.yaml's


def _lower_bounds() -> list[tuple[str, int]]:
    """Run keys whose row says `must be in [low, ...]` with a plain integer low."""
    found = []
    for key, (_, _, bounds, _) in _rows().items():
        match = re.search(r"must be in \[(-?\d+), ", bounds)
        if match and "." in key and not key.startswith(("model.layers", "chunks.")):
            found.append((key, int(match[1])))
    return found


@pytest.mark.parametrize("key, low", _lower_bounds())
def test_a_stated_lower_bound_is_the_one_enforced(key, low):
    """Just below the bound the reference states: one error naming the key; at it: accepted."""
    from omegaconf import OmegaConf

    from convscope.config.convert import to_run_config
    from convscope.errors import ConvscopeError

    base = OmegaConf.merge(OmegaConf.structured(schema.RunConfig), {"model": {"layers": [
        {"type": "ConvTranspose1d", "in_channels": 1, "out_channels": 1, "kernel_size": 4,
         "stride": 2, "padding": 1}]}})
    at = OmegaConf.merge(base, OmegaConf.from_dotlist([f"{key}={low}"]))
    to_run_config(at)
    below = OmegaConf.merge(base, OmegaConf.from_dotlist([f"{key}={low - 1}"]))
    with pytest.raises(ConvscopeError, match=rf"^{re.escape(key)}\b"):
        to_run_config(below)
