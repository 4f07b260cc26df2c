"""The import layering of src/convscope, checked by reading the source (nothing is imported).

LAYERS below is the one place that states the layering; docs/design.md points here. Every import
counts: module-level, inside a function and under `if TYPE_CHECKING:`, in the forms
`import convscope.a.b`, `from convscope.a import b` and `from convscope import a`.
"""

from __future__ import annotations

import ast
import io
import os
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

from tests.helpers import REPO

SRC = REPO / "src"
PACKAGE = "convscope"

# What each top-level module or package of convscope is allowed to lean on. A module imports only
# from its own package or from a lower layer; units on the same layer are siblings and do not
# import each other (layer 8's entry points excepted: they may share helpers). Layer 0 therefore
# imports nothing from convscope. A new top-level module or package must be added here.
LAYERS: dict[str, int] = {
    # 0  no convscope imports: errors, atomic writes, text tables, run-dir names, bundled files
    "errors": 0, "files": 0, "text": 0, "rundir": 0, "resources": 0, "oserrors": 0,
    # 1  dataclass schemas, conversion, checks that only raise, presets
    "config": 1,
    # 2  the conv core (plan, build, trace, lengths, streaming) | audio read/resample/write
    "stack": 2, "audio": 2,
    # 3  metrics, evaluation, fitting, kernel views: pure, no file writes
    "quality": 3,
    # 4  every figure (Figure API on an Agg canvas, atomic save)
    "plots": 4,
    # 5  HTML from what is on disk; never imports torch | TensorBoard events from what is on disk
    #    (board: below pipeline/ and sweep/, which both export at their finish; like report/ it
    #    reads only finished files, so it sits beside it, and loads no torch either)
    "report": 5, "board": 5,
    # 6  write a run dir | multirun summary and index | the explainer (nothing imports it) |
    #    the stack designer
    "pipeline": 6, "sweep": 6, "explainer": 6, "designer": 6,
    # 7  a folder or glob of files, each one pipeline run; what one Hydra job does (corpus.jobs) |
    #    the chunk debugger: loads its input as a run does (pipeline/), writes its own run dir
    "corpus": 7, "chunk_debugger": 7,
    # 8  entry points: Hydra glue and one-line errors, the public run API, subcommands
    "cli": 8, "api": 8, "commands": 8,  # commands*.py all count as "commands"
    "__main__": 8,  # python -m convscope: the `convscope` command, an entry point like them
}
TOP = max(LAYERS.values()) + 1  # convscope/__init__.py: the lazy public API may import anything
SIBLINGS_ALLOWED = {TOP - 1}  # the entry points
# Only these may import the explainer (a leaf: its code is for the entry points and the API).
EXPLAINER_IMPORTERS = {"", "cli", "api", "commands"}  # "" is convscope/__init__.py

# A function-level import is a deliberate lazy load; its comment says why.
LAZY_IMPORT_REASON = "a comment on the same line or the line above, saying why it is lazy"


@dataclass(frozen=True)
class Import:
    importer: str  # dotted module name
    target: str  # the convscope module it loads (the longest existing prefix of what it names);
    #              "" for another package's (kept for the lazy-import rule)
    line: int
    in_function: bool
    commented: bool

    def where(self) -> str:
        return f"{_modules()[self.importer].relative_to(REPO)}:{self.line}"


@lru_cache(maxsize=None)
def _modules() -> dict[str, Path]:
    """Every module under src/convscope, by dotted name (a package by its own name)."""
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def unit(module: str) -> str:
    """The LAYERS key a module belongs to: convscope.pipeline.stages -> pipeline ('' for the top)."""
    parts = module.split(".")
    if len(parts) == 1:
        return ""
    return "commands" if parts[1].startswith("commands") else parts[1]


def layer(module: str) -> int:
    name = unit(module)
    return TOP if name == "" else LAYERS[name]


def _existing(name: str) -> str:
    """The module that `import name` ends up loading from convscope's own files."""
    modules = _modules()
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _targets(node: ast.AST, importer: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [_existing(a.name) for a in node.names if a.name.split(".")[0] == PACKAGE]
    assert isinstance(node, ast.ImportFrom)
    base = node.module or ""
    if node.level:  # relative: resolve against the importer's package
        package = importer if _modules()[importer].name == "__init__.py" else \
            importer.rsplit(".", 1)[0]
        package = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        base = f"{package}.{base}" if base else package
    if base.split(".")[0] != PACKAGE:
        return []
    # `from a import b` loads a.b when b is a module, else a itself
    return sorted({_existing(f"{base}.{a.name}") if f"{base}.{a.name}" in _modules()
                   else _existing(base) for a in node.names})


def _comment_lines(source: str) -> set[int]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0] for tok in tokens if tok.type == tokenize.COMMENT}


def _imports_of(module: str) -> list[Import]:
    source = _modules()[module].read_text(encoding="utf-8")
    tree = ast.parse(source)
    comments = _comment_lines(source)
    found: list[tuple[ast.AST, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    visit(tree, False)
    # A run of consecutive function-level imports shares one comment: above its first line or on it.
    lazy_lines = {n for node, lazy in found if lazy for n in range(node.lineno, node.end_lineno + 1)}
    imports = []
    for node, in_function in found:
        above = node.lineno - 1
        while above in lazy_lines:
            above -= 1
        commented = any(n in comments for n in (above, above + 1,
                                                 *range(node.lineno, node.end_lineno + 1)))
        imports += [Import(module, target, node.lineno, in_function, commented)
                    for target in _targets(node, module) or [""]]
    return imports


@lru_cache(maxsize=None)
def all_imports() -> tuple[Import, ...]:
    """Every import statement of every module: one entry per convscope module it loads."""
    return tuple(imp for module in _modules() for imp in _imports_of(module))


def convscope_imports() -> list[Import]:
    return [imp for imp in all_imports() if imp.target]


def _describe(imp: Import) -> str:
    return (f"{imp.where()}: {imp.importer} imports {imp.target} "
            f"({unit(imp.importer) or 'top'}, layer {layer(imp.importer)} -> "
            f"{unit(imp.target) or 'top'}, layer {layer(imp.target)})")


# --- the rules ------------------------------------------------------------------------------

def layering_violations(imports) -> list[str]:
    """(a) imports from a layer above, (b) imports of a sibling on the same layer."""
    problems = []
    for imp in imports:
        here, there = unit(imp.importer), unit(imp.target)
        if here == "" or here == there:  # the top may import anything; a package itself
            continue
        if layer(imp.target) > layer(imp.importer):
            problems.append(f"from a layer above: {_describe(imp)}")
        elif layer(imp.target) == layer(imp.importer) and \
                layer(imp.importer) not in SIBLINGS_ALLOWED:
            problems.append(f"sibling on the same layer: {_describe(imp)}")
    return problems


def explainer_violations(imports) -> list[str]:
    """(c) the explainer is a leaf: only the top, cli, api and commands import it."""
    return [f"imports the explainer: {_describe(imp)}" for imp in imports
            if unit(imp.target) == "explainer" and unit(imp.importer) != "explainer"
            and unit(imp.importer) not in EXPLAINER_IMPORTERS]


def import_cycles(imports) -> list[list[str]]:
    """(d) import cycles, each as the shortest path from a module back to itself (one report per
    set of modules involved)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.target != imp.importer:
            graph.setdefault(imp.importer, set()).add(imp.target)
    cycles, seen = [], set()
    for start in sorted(graph):
        path = _shortest_path_back(graph, start)
        if path and frozenset(path) not in seen:
            seen.add(frozenset(path))
            cycles.append(path)
    return cycles


def _shortest_path_back(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """Breadth first from `start` until an edge leads back to it; None if none does."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:  # back home: follow the breadcrumbs
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    return None


def uncommented_lazy_imports(imports) -> list[str]:
    """(e) a function-level import says why it is not at the top of its module."""
    seen = set()
    problems = []
    for imp in imports:
        if imp.in_function and not imp.commented and (imp.importer, imp.line) not in seen:
            seen.add((imp.importer, imp.line))
            problems.append(f"{imp.where()}: function-level import needs {LAZY_IMPORT_REASON}")
    return problems


# --- the tests ------------------------------------------------------------------------------

def test_every_top_level_module_has_a_layer():
    unknown = sorted({unit(m) for m in _modules()} - set(LAYERS) - {""})
    assert not unknown, f"add these to LAYERS in {Path(__file__).name}: {unknown}"


def test_imports_go_down_the_layers_and_not_across():
    problems = layering_violations(convscope_imports())
    assert not problems, "\n".join(problems)


def test_only_the_entry_points_import_the_explainer():
    problems = explainer_violations(convscope_imports())
    assert not problems, "\n".join(problems)


def test_no_import_cycles():
    cycles = import_cycles(convscope_imports())
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_function_level_imports_say_why():
    problems = uncommented_lazy_imports(all_imports())
    assert not problems, "\n".join(problems)


# The rules must catch what they are for: each one on a made-up import that breaks it.

def _fake(importer: str, target: str, in_function: bool = False, commented: bool = True):
    return Import(importer, target, 1, in_function, commented)


@pytest.mark.parametrize("importer, target, broken", [
    ("convscope.report.page", "convscope.stack.trace", None),  # down: fine
    ("convscope.report.page", "convscope.pipeline.stages", "from a layer above"),
    ("convscope.stack.plan", "convscope.audio.segment", "sibling on the same layer"),
    ("convscope.sweep.summary", "convscope.pipeline.stages", "sibling on the same layer"),
    ("convscope.files", "convscope.errors", "sibling on the same layer"),  # layer 0: none at all
    ("convscope.config.schema", "convscope", "from a layer above"),  # the top is above everything
])
def test_layering_rules_catch_bad_imports(importer, target, broken):
    problems = layering_violations([_fake(importer, target)])
    assert [broken in p for p in problems] == ([True] if broken else []), problems


def test_explainer_rule_catches_a_pipeline_import():
    assert explainer_violations([_fake("convscope.corpus.jobs", "convscope.explainer.explain")])
    assert not explainer_violations([_fake("convscope.cli", "convscope.explainer.explain")])


def test_cycle_rule_reports_the_path():
    fake = [_fake("convscope.quality.fit", "convscope.quality.metrics"),
            _fake("convscope.quality.metrics", "convscope.quality.spectral"),
            _fake("convscope.quality.spectral", "convscope.quality.fit", in_function=True)]
    assert import_cycles(fake) == [["convscope.quality.fit", "convscope.quality.metrics",
                                    "convscope.quality.spectral", "convscope.quality.fit"]]


def test_lazy_import_rule_wants_a_comment():
    assert uncommented_lazy_imports([_fake("convscope.cli", "convscope.errors", True, False)])
    assert not uncommented_lazy_imports([_fake("convscope.cli", "convscope.errors", True, True)])


# What the layering is for, checked in a fresh interpreter.

@pytest.mark.parametrize("module, absent", [
    ("convscope.report.page", "torch"),
    ("convscope.sweep.index", "torch"),
    ("convscope.board.export", "torch"),
    ("convscope.plots.envelopes", "matplotlib"),
])
def test_light_modules_stay_light(module, absent):
    code = f"import sys, {module}; print({absent!r} in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", f"importing {module} loads {absent}"


# Below the one-shot/streamed decision (pipeline.preflight.decide) a run is a model, a source and
# a RunContext: where the model came from (a config stack's layers, model=module's target, a
# Python object) is settled above it, so these modules never read the model's config.
# every run's stages once the model is obtained and decided (pipeline/single.py is above): the
# one-shot and streamed paths of a config stack and of any module, what both share, the sinks
BELOW_DECISION = ("convscope.stack.overlap", "convscope.stack.module_cells",
                  "convscope.stack.estimate", "convscope.stack.streaming",
                  "convscope.stack.stateful", "convscope.pipeline.results",
                  "convscope.pipeline.streamed", "convscope.pipeline.oneshot",
                  "convscope.pipeline.stages", "convscope.pipeline.consumers",
                  "convscope.pipeline.figures", "convscope.pipeline.evaluate",
                  "convscope.pipeline.cost", "convscope.audio.arrays")
MODEL_VARIANTS = {"ModelConfig", "LayerConfig"}  # the config schema's model descriptions


def model_config_uses(source: str) -> list[str]:
    """Imports of the schema's model variants and reads of `<config>.model`, by line."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module == f"{PACKAGE}.config.schema":
            found += [f"{node.lineno}: imports {a.name}" for a in node.names
                      if a.name in MODEL_VARIANTS]
        if isinstance(node, ast.Attribute) and node.attr == "model" \
                and isinstance(node.value, ast.Name) and node.value.id in ("cfg", "config"):
            found.append(f"{node.lineno}: reads {node.value.id}.model")
    return found


@pytest.mark.parametrize("module", BELOW_DECISION)
def test_nothing_below_the_decision_reads_the_models_config(module):
    assert module in _modules(), f"{module} is gone: update BELOW_DECISION"
    assert model_config_uses(_modules()[module].read_text(encoding="utf-8")) == []


def test_model_config_rule_catches_an_import_and_a_read():
    source = ("from convscope.config.schema import LayerConfig, RunConfig\n"
              "def f(cfg):\n    return cfg.model.layers\n")
    assert model_config_uses(source) == ["1: imports LayerConfig", "3: reads cfg.model"]


def test_pipeline_has_at_most_15_modules():
    pipeline = [name for name in _modules() if name.startswith(f"{PACKAGE}.pipeline.")]
    assert len(pipeline) + 1 <= 15, sorted(pipeline)  # + its __init__


def test_the_one_shot_path_knows_no_plan():
    """Every model's one shot is oneshot.run_one_shot: it takes an nn.Module, never a config
    stack's plan (a config stack is one way to obtain the module)."""
    source = _modules()[f"{PACKAGE}.pipeline.oneshot"].read_text(encoding="utf-8")
    imported = [node.module for node in ast.walk(ast.parse(source))
                if isinstance(node, ast.ImportFrom)]
    assert f"{PACKAGE}.stack.plan" not in imported and "LayerPlan" not in source
