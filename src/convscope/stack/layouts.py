"""Published key layouts: the explicit name mapping between a published generator's state_dict
and the preset stack that rebuilds it (configs/model/hifigan_v*.yaml, bigvgan_v2_24k.yaml).

A preset's own names follow its nesting (`3.branches.0.0.inner.1.parametrizations.weight
.original0`); the published code names modules by its attributes (`resblocks.0.convs1.0
.weight_g`). No checkpoint maps onto the other by itself, so each family states its rules here,
from the published name to the preset's module, read off the preset's structure (which layer of
the top-level Sequential is a Conv1d, a ConvTranspose1d, a Parallel), never from call order:

  hifigan (jik876/hifi-gan models.py Generator, ResBlock1 / ResBlock2)
    conv_pre                        -> the first top-level Conv1d
    ups.I                           -> the I-th top-level ConvTranspose1d
    resblocks.(I*N+J).convs1.R      -> the I-th Parallel, branch J, Residual R, its first conv
    resblocks.(I*N+J).convs2.R      -> the same Residual's second conv
    resblocks.(I*N+J).convs.R       -> the Residual's only conv (ResBlock2, V3)
    conv_post                       -> the last top-level Conv1d
  bigvgan (NVIDIA/BigVGAN bigvgan.py, AMPBlock1): as hifigan, and
    ups.I.0                         -> the I-th ConvTranspose1d (each ups entry is a ModuleList)
    resblocks.(I*N+J).activations.(2R+A) -> that Residual's A-th AntiAliasedActivation
    activation_post                 -> the last top-level AntiAliasedActivation

(N: the branches of a Parallel.) Within a module the leaves map too: weight norm's old
`weight_g`/`weight_v` and current `parametrizations.weight.original0`/`1` both give the preset's
parametrization; an activation's `act.alpha`/`act.beta` are Snake's parameters, its
`upsample.filter` / `downsample.lowpass.filter` the Kaiser taps (`up.filter`, `down.filter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch import nn

from convscope.stack.blocks import AntiAliasedActivation, Parallel, Residual

LAYOUTS = ("hifigan", "bigvgan")
# published code's module name for a ConvTranspose1d stage: BigVGAN wraps each in a ModuleList
UPS_SUFFIX = {"hifigan": "", "bigvgan": ".0"}
SOURCES = {"hifigan": "jik876/hifi-gan models.py Generator",
           "bigvgan": "NVIDIA/BigVGAN bigvgan.py BigVGAN"}
# conv leaves: preset (parametrized weight norm) <- published (old or current weight norm)
WEIGHT_NORM_LEAVES = {"weight_g": "parametrizations.weight.original0",
                      "weight_v": "parametrizations.weight.original1",
                      "parametrizations.weight.original0": "parametrizations.weight.original0",
                      "parametrizations.weight.original1": "parametrizations.weight.original1"}
ACTIVATION_LEAVES = {"act.alpha": "act.alpha", "act.beta": "act.beta",
                     "upsample.filter": "up.filter", "downsample.lowpass.filter": "down.filter"}
CONVS = (nn.Conv1d, nn.ConvTranspose1d)


@dataclass(frozen=True)
class Entry:
    """One module of the mapping: its published name, its preset name and the rule behind it."""

    published: str
    preset: str
    rule: str
    kind: str  # conv | activation


def name_table(stack: nn.Module, layout: str) -> list[Entry]:
    """Every module the `layout` rules map, for this built preset `stack`."""
    top = list(stack.named_children())
    convs = [name for name, module in top if isinstance(module, nn.Conv1d)]
    ups = [name for name, module in top if isinstance(module, nn.ConvTranspose1d)]
    fusions = [(name, module) for name, module in top if isinstance(module, Parallel)]
    activations = [name for name, module in top if isinstance(module, AntiAliasedActivation)]
    table: list[Entry] = []
    if convs:
        table.append(Entry("conv_pre", convs[0], "conv_pre -> the first top-level Conv1d", "conv"))
    suffix = UPS_SUFFIX[layout]
    table += [Entry(f"ups.{i}{suffix}", name, f"ups.I{suffix} -> the I-th ConvTranspose1d",
                    "conv") for i, name in enumerate(ups)]
    for stage, (name, fusion) in enumerate(fusions):
        count = len(fusion.branches)
        for branch_index, branch in enumerate(fusion.branches):
            block = f"resblocks.{stage * count + branch_index}"
            where = f"{name}.branches.{branch_index}"
            table += _block_entries(block, where, branch, count)
    if layout == "bigvgan" and activations:
        table.append(Entry("activation_post", activations[-1], "activation_post -> the last "
                           "top-level AntiAliasedActivation", "activation"))
    if len(convs) > 1:
        table.append(Entry("conv_post", convs[-1], "conv_post -> the last top-level Conv1d",
                           "conv"))
    return table


def _block_entries(block: str, where: str, branch: nn.Module, count: int) -> list[Entry]:
    """A ResBlock / AMPBlock: a Sequential of Residuals, one per dilation."""
    residuals = [(f"{where}.{index}", module) for index, module in branch.named_children()
                 if isinstance(module, Residual)] if isinstance(branch, nn.Sequential) else []
    entries: list[Entry] = []
    head = f"resblocks.(I*{count}+J)"
    for r, (path, residual) in enumerate(residuals):
        inner = list(residual.inner.named_children())
        convs = [f"{path}.inner.{n}" for n, m in inner if isinstance(m, CONVS)]
        acts = [f"{path}.inner.{n}" for n, m in inner if isinstance(m, AntiAliasedActivation)]
        if len(convs) == 1:
            entries.append(Entry(f"{block}.convs.{r}", convs[0], f"{head}.convs.R -> Parallel "
                                 "I, branch J, Residual R, its conv (ResBlock2)", "conv"))
        elif len(convs) == 2:
            entries.append(Entry(f"{block}.convs1.{r}", convs[0], f"{head}.convs1.R -> "
                                 "Parallel I, branch J, Residual R, its first conv", "conv"))
            entries.append(Entry(f"{block}.convs2.{r}", convs[1], f"{head}.convs2.R -> "
                                 "Parallel I, branch J, Residual R, its second conv", "conv"))
        entries += [Entry(f"{block}.activations.{2 * r + a}", act, f"{head}.activations.(2R+A) "
                          "-> Parallel I, branch J, Residual R, its A-th AntiAliasedActivation",
                          "activation") for a, act in enumerate(acts)]
    return entries


def published_leaf(entry: Entry, preset_leaf: str) -> Optional[str]:
    """The published name of a preset leaf (old weight norm, as the published code saves it)."""
    if entry.kind == "activation":
        return next((pub for pub, own in ACTIVATION_LEAVES.items() if own == preset_leaf), None)
    if preset_leaf in ("weight", "bias"):
        return preset_leaf
    return next((pub for pub, own in WEIGHT_NORM_LEAVES.items()
                 if own == preset_leaf and not pub.startswith("parametrizations")), None)


def preset_leaf(entry: Entry, published: str) -> Optional[str]:
    """The preset leaf a published leaf fills (None: no rule for it). A plain `weight` (weight
    norm removed) is converted by the loader, as is a weight-norm pair into a plain conv."""
    if entry.kind == "activation":
        return ACTIVATION_LEAVES.get(published)
    if published in ("weight", "bias"):
        return published
    return WEIGHT_NORM_LEAVES.get(published)


def split_key(key: str, prefixes: dict[str, Entry]) -> Optional[tuple[Entry, str]]:
    """(entry, leaf) for a full key under one of `prefixes` (the longest that matches)."""
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        entry = prefixes.get(".".join(parts[:cut]))
        if entry is not None:
            return entry, ".".join(parts[cut:])
    return None
