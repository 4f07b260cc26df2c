"""scripts/explain.py's library side: check the tutorials' examples, or walk through one.

Three modes, chosen by the config:
  (nothing)           run every catalogue example through the reference code and torch
  example=<name>      one example, step by step, plus scatter.png
                      (animate=true: also scatter.gif and an index.html showing both)
  input=[..] weight=[..] [conv=transpose|conv1d] [stride=.. ...]
                      the same steps for the user's numbers (shapes: see custom.py)
explorer=true adds explorer.html, the interactive page, to the run dir in any mode.

convscope.explain (explainer/api.py) runs the same modes through `run_explain`, so the API's text
and the script's stdout cannot drift apart.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from convscope.errors import ConvscopeError
from convscope.explainer.animation import Animation, check_animatable
from convscope.explainer.catalogue import CATALOGUE, find_example
from convscope.explainer.config import ExplainConfig
from convscope.explainer.custom import custom_example, shown
from convscope.explainer.examples import Example, ExampleRun, close, run_example
from convscope.explainer.explorer import explorer_link, write_explorer
from convscope.explainer.steps.transpose1d import _torch_output
from convscope.explainer.walkthrough import walkthrough
from convscope.report.explain_page import write_explain_page
from convscope.rundir import RunDir
from convscope.text import fmt_shape, fmt_tensor, indent

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = ["ExplainConfig", "Outcome", "explain", "register_explain_schema", "run_explain",
           "to_explain_config"]

CUSTOM_KEYS = ("conv", "weight", "bias", "stride", "padding", "output_padding", "dilation")


@dataclass(frozen=True)
class Outcome:
    """What one request did: its exit status, every example run, and the picture if drawn."""

    status: int  # 0, or 1 if something did not match
    runs: tuple[ExampleRun, ...]
    picture: Path | None = None
    animation: Path | None = None


def register_explain_schema() -> None:
    """Put the schema in Hydra's ConfigStore; configs/explain.yaml lists it in its defaults."""
    # Hydra is the script's business: convscope.explain never loads it
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="explain_schema", node=ExplainConfig)


def to_explain_config(cfg: DictConfig | dict) -> ExplainConfig:
    """Validate a composed config (Hydra's node, if present, is ignored) into the dataclass."""
    from convscope.config.convert import to_dataclass  # OmegaConf: only the script needs it

    return to_dataclass(cfg, ExplainConfig)


def explain(cfg: ExplainConfig, out_dir: Path | None, out: TextIO = sys.stdout) -> int:
    """Run the mode the config asks for; returns the exit status (1 if something mismatched)."""
    return run_explain(cfg, out_dir, out).status


def run_explain(cfg: ExplainConfig, out_dir: Path | None, out: TextIO) -> Outcome:
    """explain(), keeping the runs and the picture's path for convscope.explain's result."""
    check_mode(cfg)
    if cfg.explorer and out_dir is None:
        raise ConvscopeError("explorer=true: there is no run dir to write explorer.html into")
    if cfg.explorer:  # first, so the animate=true page can link it
        write_explorer(RunDir(out_dir).explorer)
    if cfg.input is None and cfg.example is None:
        outcome = explain_all(out)
    else:
        example = custom_example(cfg) if cfg.input is not None else find_example(cfg.example)
        if cfg.animate:
            check_animatable(example.layer, "your conv=conv1d layer" if cfg.input is not None
                             else f"example {example.name}")
        outcome = explain_one(example, out_dir if cfg.picture else None, out,
                              out_dir if cfg.animate else None)
    if cfg.explorer:
        # one walked-through example opens the page on its numbers (when the page can show them)
        run = outcome.runs[0] if len(outcome.runs) == 1 else None
        print(f"explorer: {explorer_link(RunDir(out_dir).explorer, run)}", file=out)
    return outcome


def check_mode(cfg: ExplainConfig) -> None:
    if cfg.example is not None and cfg.input is not None:
        raise ConvscopeError(
            f"give either example={cfg.example} or input=[...], not both")
    if cfg.animate and cfg.example is None and cfg.input is None:
        raise ConvscopeError(
            "animate=true animates one example: add example=<name> (e.g. "
            "example=tconv1d_stride) or input=[...] weight=[...]")
    if cfg.input is None:
        defaults = ExplainConfig()
        changed = [f"{name}={shown(getattr(cfg, name))}" for name in CUSTOM_KEYS
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

def explain_all(out: TextIO) -> Outcome:
    runs = [run_example(example) for example in CATALOGUE]
    section = None
    for run in runs:
        if run.example.section != section:
            section = run.example.section
            print(f"\n== {section} ==", file=out)
        print("\n".join(example_block(run)), file=out)
    matched = sum(run.matches for run in runs)
    print(f"\n{matched}/{len(runs)} examples match", file=out)
    return Outcome(0 if matched == len(runs) else 1, tuple(runs))


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


def explain_one(example: Example, out_dir: Path | None, out: TextIO,
                animate_dir: Path | None = None) -> Outcome:
    """`out_dir`: where scatter.png goes; `animate_dir`: where scatter.gif and its page go."""
    run = run_example(example)
    print(f"{example.name}: {example.summary}", file=out)
    print(f"({example.section})\n", file=out)
    steps = "\n".join(walkthrough(example, run))
    print(steps, file=out)
    print("\nChecks:", file=out)
    for check in run.checks:
        print(f"  {mark(check.ok)} {check.what}", file=out)
    path = None
    if out_dir is not None:
        from convscope.explainer.picture import save_picture  # matplotlib only when drawing

        path = save_picture(example.layer, run.input, RunDir(out_dir).scatter)
    animated = None if animate_dir is None else animate(example, run, animate_dir, steps, out)
    if path is not None or animated is not None:
        print(file=out)
    if path is not None:
        print(f"picture: {path}", file=out)
    if animated is not None:
        print(f"animation: {animated.path}\npage: {animated.page}", file=out)
    ok = run.matches and (animated is None or animated.ok)
    return Outcome(0 if ok else 1, (run,), path, None if animated is None else animated.path)


@dataclass(frozen=True)
class Animated:
    ok: bool  # the closing frame equals torch's output
    path: Path  # scatter.gif
    page: Path  # index.html


def animate(example: Example, run: ExampleRun, out_dir: Path, steps: str,
            out: TextIO) -> Animated:
    """Write scatter.gif and the page showing it; check the closing frame against torch."""
    from convscope.explainer.animation_gif import save_animation  # matplotlib, Pillow

    path, animation = save_animation(example.layer, run.input, RunDir(out_dir).animation)
    torch_y = _torch_output(animation.layer, animation.x[None, None, :])
    ok = close(animation.output[None, None, :], torch_y)
    print(f"  {mark(ok)} animation's last frame = torch "
          f"({len(animation.frames)} frames: {len(animation.x)} input samples + y)", file=out)
    captions = {RunDir.ANIMATION: animation_caption(animation),
                RunDir.SCATTER: "Every copy at once: row l is x[l]·w placed from output index "
                                "l·stride − padding, the bottom row their sum."}
    explorer = RunDir(out_dir).explorer
    link = explorer_link(explorer, run) if explorer.is_file() else None
    page = write_explain_page(out_dir, example.name, example.summary, steps, captions, link)
    return Animated(ok, path, page)


def animation_caption(animation: Animation) -> str:
    """One sentence for the page, from this animation's numbers."""
    layer, length = animation.layer, len(animation.x)
    step = (f"{layer.stride} output positions after the previous one" if layer.stride > 1
            else "one output position after the previous one")
    return (f"The output built one input sample at a time: each frame adds the next copy "
            f"x[l]·w (outlined), {step}, to the running sum; the last of the {length + 1} "
            f"frames keeps the {int(animation.canvas.kept.sum())} outputs of y.")


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
