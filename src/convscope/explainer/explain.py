"""scripts/explain.py's library side: check the tutorials' examples, or walk through one.

Three modes, chosen by the config:
  (nothing)           run every catalogue example through the reference code and torch
  example=<name>      one example, step by step, plus scatter.png
  input=[..] weight=[..] [conv=transpose|conv1d] [stride=.. ...]
                      the same steps for the user's numbers (one channel in and out)
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, TextIO

from omegaconf import DictConfig

from convscope.config.convert import to_dataclass
from convscope.errors import ConvscopeError
from convscope.explainer.catalogue import CATALOGUE, find_example
from convscope.explainer.examples import (
    CONV1D,
    TRANSPOSE1D,
    Example,
    ExampleRun,
    Layer,
    given,
    run_example,
)
from convscope.explainer.walkthrough import walkthrough
from convscope.text import fmt_shape, fmt_tensor, indent

CONV_KINDS = {"transpose": TRANSPOSE1D, "conv1d": CONV1D}
PICTURE_NAME = "scatter.png"


@dataclass
class ExplainConfig:
    example: Optional[str] = None  # a catalogue name; null with no input: check every example
    conv: str = "transpose"  # custom input only: transpose (ConvTranspose1d) | conv1d
    input: Optional[List[float]] = None  # custom input samples (one channel)
    weight: Optional[List[float]] = None  # custom kernel taps
    bias: Optional[float] = None
    stride: int = 1
    padding: int = 0
    output_padding: int = 0
    dilation: int = 1
    picture: bool = True  # write scatter.png into the run dir


CUSTOM_KEYS = ("conv", "weight", "bias", "stride", "padding", "output_padding", "dilation")


def register_explain_schema() -> None:
    """Put the schema in Hydra's ConfigStore; configs/explain.yaml lists it in its defaults."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="explain_schema", node=ExplainConfig)


def to_explain_config(cfg: DictConfig | dict) -> ExplainConfig:
    """Validate a composed config (Hydra's node, if present, is ignored) into the dataclass."""
    return to_dataclass(cfg, ExplainConfig)


def explain(cfg: ExplainConfig, out_dir: Path | None, out: TextIO = sys.stdout) -> int:
    """Run the mode the config asks for; returns the exit status (1 if something mismatched)."""
    check_mode(cfg)
    if cfg.input is not None:
        return explain_one(custom_example(cfg), out_dir if cfg.picture else None, out)
    if cfg.example is not None:
        return explain_one(find_example(cfg.example), out_dir if cfg.picture else None, out)
    return explain_all(out)


def check_mode(cfg: ExplainConfig) -> None:
    if cfg.example is not None and cfg.input is not None:
        raise ConvscopeError(
            f"give either example={cfg.example} or input=[...], not both")
    if cfg.input is None:
        defaults = ExplainConfig()
        changed = [f"{name}={getattr(cfg, name)}" for name in CUSTOM_KEYS
                   if getattr(cfg, name) != getattr(defaults, name)]
        if cfg.example and changed:
            raise ConvscopeError(
                f"{', '.join(changed)}: example {cfg.example} has its own parameters; for your "
                "own numbers drop example= and give input=[...] weight=[...]")
        if changed:
            raise ConvscopeError(
                f"{', '.join(changed)} only appl{'y' if len(changed) > 1 else 'ies'} to custom "
                "input: add input=[...] too, "
                "e.g. input=[1,2,3] weight=[1,0,-1]")


# ---------------------------------------------------------------------------------------------
# Modes
# ---------------------------------------------------------------------------------------------

def explain_all(out: TextIO) -> int:
    runs = [run_example(example) for example in CATALOGUE]
    section = None
    for run in runs:
        if run.example.section != section:
            section = run.example.section
            print(f"\n== {section} ==", file=out)
        print("\n".join(example_block(run)), file=out)
    matched = sum(run.matches for run in runs)
    print(f"\n{matched}/{len(runs)} examples match", file=out)
    return 0 if matched == len(runs) else 1


def example_block(run: ExampleRun) -> list[str]:
    """One example in the overview: parameters, expected, reference and torch, and a mark."""
    example = run.example
    stack = " -> ".join(layer.describe() for layer in example.layers)
    lines = [f"{mark(run.matches)} {example.name}: {stack}", f"    {example.summary}"]
    rows = [("input", _tensor_or_shape(run.input, example.input.is_random, example.note))]
    if len(example.layers) == 1 and not example.layer.weight.is_random:
        rows.append(("weight", fmt_tensor(example.layer.weight.array())))
    rows += expectation_rows(example, run)
    width = max(len(name) for name, _ in rows)
    lines += [f"    {name:<{width}}  {indent(text, ' ' * (6 + width))}" for name, text in rows]
    failed = [check.what for check in run.checks if not check.ok]
    if failed:
        lines.append(f"    failed: {'; '.join(failed)}")
    return lines


def expectation_rows(example: Example, run: ExampleRun) -> list[tuple[str, str]]:
    if example.expected is not None:
        return [("expected", fmt_tensor(example.expected.array())),
                ("reference", fmt_tensor(run.reference[-1])),
                ("torch", fmt_tensor(run.torch[-1]))]
    rows = [("expected", "output " + _shapes(example.expected_shapes)
             + _param_shapes(example.expected_weight_shapes, example.expected_bias_shapes))]
    rows.append(("reference", "output " + _shapes(o.shape for o in run.reference)))
    modules = [layer.torch_module() for layer in example.layers]
    weights = [tuple(m.weight.shape) for m in modules]
    biases = [tuple(m.bias.shape) for m in modules if m.bias is not None]
    rows.append(("torch", "output " + _shapes(o.shape for o in run.torch)
                 + _param_shapes(weights, biases)))
    return rows


def explain_one(example: Example, out_dir: Path | None, out: TextIO) -> int:
    run = run_example(example)
    print(f"{example.name}: {example.summary}", file=out)
    print(f"({example.section})\n", file=out)
    print("\n".join(walkthrough(example, run)), file=out)
    print("\nChecks:", file=out)
    for check in run.checks:
        print(f"  {mark(check.ok)} {check.what}", file=out)
    if out_dir is not None:
        from convscope.explainer.picture import save_picture

        path = save_picture(example.layer, run.input, out_dir / PICTURE_NAME)
        print(f"\npicture: {path}", file=out)
    return 0 if run.matches else 1


def custom_example(cfg: ExplainConfig) -> Example:
    """The user's numbers as a one-layer, one-channel example with no expected values."""
    if cfg.conv not in CONV_KINDS:
        raise ConvscopeError(f"conv must be one of {', '.join(CONV_KINDS)}, got conv={cfg.conv}")
    if not cfg.input:
        raise ConvscopeError("input is empty: give at least one sample, e.g. input=[1,2,3]")
    if cfg.weight is None or not cfg.weight:
        raise ConvscopeError(f"weight is {'missing' if cfg.weight is None else 'empty'}: "
                             "give the kernel taps too, e.g. weight=[1,0,-1]")
    for key in ("input", "weight", "bias"):
        values = getattr(cfg, key)
        values = [values] if isinstance(values, float) else values or []
        if not all(math.isfinite(v) for v in values):
            raise ConvscopeError(f"{key} must be finite numbers, got {key}={getattr(cfg, key)}")
    kind = CONV_KINDS[cfg.conv]
    if kind == CONV1D and cfg.output_padding:
        raise ConvscopeError(f"output_padding={cfg.output_padding} applies to conv=transpose "
                             "only; Conv1d has no output_padding")
    layer = Layer(kind, given(cfg.weight, (1, 1, len(cfg.weight))),
                  None if cfg.bias is None else given([cfg.bias], (1,)),
                  stride=cfg.stride, padding=cfg.padding, dilation=cfg.dilation,
                  output_padding=cfg.output_padding if kind == TRANSPOSE1D else 0)
    summary = ("your input through " + layer.describe())
    return Example("custom", "custom input", summary,
                   given(cfg.input, (1, 1, len(cfg.input))), (layer,))


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _tensor_or_shape(array, is_random: bool, note: str) -> str:
    if not is_random:
        return fmt_tensor(array)
    return f"shape {fmt_shape(array.shape)}, {note or 'seeded random'}"


def _shapes(shapes) -> str:
    return ", ".join(fmt_shape(shape) for shape in shapes)


def _param_shapes(weights, biases) -> str:
    text = f"; weight {_shapes(weights)}" if weights else ""
    return text + (f"; bias {_shapes(biases)}" if biases else "")
