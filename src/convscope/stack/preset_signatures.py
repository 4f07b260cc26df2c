"""Which preset a published checkpoint is for, from its shapes: the error for a HiFi-GAN V2 file
loaded into model=hifigan_v1 says "looks like model=hifigan_v2" instead of listing 400
mismatched shapes only.

A signature is what tells the published generators apart: the weight shapes of conv_pre, of
every ups stage and of conv_post, and how many resblocks of which kind. A checkpoint's is read
off its keys; a preset's off its YAML (configs/model/*.yaml, read without building anything).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Optional

import torch

from convscope.config.presets import model_preset_names, model_preset_node
from convscope.errors import ConvscopeError

WEIGHT_LEAVES = ("weight_v", "parametrizations.weight.original1", "weight")
RESBLOCK = re.compile(r"^resblocks\.(\d+)\.(convs1|convs)\.")
UPS = re.compile(r"^(ups\.\d+(?:\.0)?)\.(?:weight_v|parametrizations\.weight\.original1|weight)$")


def checkpoint_signature(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """conv_pre, ups.* and conv_post weight shapes, and (resblock count, kind), of a published
    state_dict with either weight norm (or none)."""
    signature: dict[str, Any] = {}
    for module in ("conv_pre", "conv_post"):
        for leaf in WEIGHT_LEAVES:
            if f"{module}.{leaf}" in state:
                signature[module] = tuple(state[f"{module}.{leaf}"].shape)
                break
    for key, value in state.items():
        match = UPS.match(key)
        if match:
            signature[match[1]] = tuple(value.shape)
    blocks = {(m[1], m[2]) for key in state if (m := RESBLOCK.match(key))}
    kinds = {kind for _, kind in blocks}
    signature["resblocks"] = (len({index for index, _ in blocks}),
                              kinds.pop() if len(kinds) == 1 else None)
    return signature


def preset_signature(layers: list[dict], layout: str) -> dict[str, Any]:
    """The same signature from a preset's layer dicts (its YAML `model.layers`)."""
    convs = [layer for layer in layers if layer.get("type") == "Conv1d"]
    ups = [layer for layer in layers if layer.get("type") == "ConvTranspose1d"]
    signature: dict[str, Any] = {}
    if convs:
        signature["conv_pre"] = _conv_shape(convs[0])
    if len(convs) > 1:
        signature["conv_post"] = _conv_shape(convs[-1])
    suffix = ".0" if layout == "bigvgan" else ""
    for index, layer in enumerate(ups):
        signature[f"ups.{index}{suffix}"] = (layer["in_channels"], layer["out_channels"]
                                             // (layer.get("groups") or 1), layer["kernel_size"])
    count, kinds = 0, set()
    for fusion in (layer for layer in layers if layer.get("type") == "Parallel"):
        for branch in fusion.get("layers") or []:
            count += 1
            inner = [conv for residual in branch.get("layers") or []
                     for conv in residual.get("layers") or []
                     if conv.get("type") in ("Conv1d", "ConvTranspose1d")]
            per_residual = len(inner) / max(1, len(branch.get("layers") or []))
            kinds.add("convs1" if per_residual == 2 else "convs")
    signature["resblocks"] = (count, kinds.pop() if len(kinds) == 1 else None)
    return signature


def _conv_shape(layer: dict) -> tuple[int, int, int]:
    return (layer["out_channels"], layer["in_channels"] // (layer.get("groups") or 1),
            layer["kernel_size"])


def looks_like(state: Mapping[str, torch.Tensor], current: str) -> Optional[str]:
    """The preset (other than `current`) whose signature the checkpoint has, if any."""
    wanted = checkpoint_signature(state)
    for name in model_preset_names():
        if name == current:
            continue
        try:
            node = model_preset_node(name)
        except ConvscopeError:
            continue
        other = node.get("layout") if isinstance(node, dict) else None
        if other is None:
            continue
        if preset_signature(node.get("layers") or [], other) == wanted:
            return name
    return None
