"""docs/configuration.md: every config key, generated from the schema and the configs.

    python scripts/config_reference.py --write docs/configuration.md   # regenerate it
    python scripts/config_reference.py                                   # print it

The keys are the fields of the dataclass schemas (convscope.config.schema: RunConfig for run,
learn and chunks, plus learn.* and chunks.*; DesignConfig for design), a layer's as
model.layers.<i>.<key>. Each key's default is the value its config file writes
(configs/<command>.yaml, data/<default>.yaml), else the schema's; its comment is the one written
beside it in that file (as `convscope <command> --help` shows it), else the schema's comment;
its bounds are what the checks say when a value is refused: the `in_range(...)` calls and the
"<key> must ..." messages of convscope/config/checks.py and convscope/designer/request.py.
tests/test_config_reference.py fails when the committed file differs from this script's output
or misses a schema key.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import re
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path

from convscope.commands_help import read_config_help
from convscope.config import schema
from convscope.resources import configs_dir

SRC = Path(schema.__file__).resolve().parents[1]  # src/convscope
# where values are refused
CHECK_MODULES = ("convscope.config.checks", "convscope.designer.request")
LAYER_PREFIX = "model.layers.<i>"
COMMANDS = (  # section title, schema, config files whose keys and comments apply (first wins)
    ("convscope run (configs/run.yaml; `learn` and `chunks` take every key too)",
     schema.RunConfig, ("run.yaml", "data/sample.yaml")),
    ("convscope learn: `learn.*` (configs/learn.yaml)", schema.LearnRunConfig, ("learn.yaml",)),
    ("convscope chunks: `chunks.*` (configs/chunks.yaml)", schema.ChunksRunConfig,
     ("chunks.yaml",)),
    ("convscope design (configs/design.yaml)", schema.DesignConfig, ("design.yaml",)),
)


def schema_keys(cls: type, prefix: str = "") -> list[tuple[str, object, str]]:
    """(dotted key, schema default, type) of every leaf field; a layer's fields once, as
    model.layers.<i>.<key>."""
    hints = typing.get_type_hints(cls)
    keys = []
    for item in fields(cls):
        key = f"{prefix}{item.name}"
        kind = hints[item.name]
        if is_dataclass(kind):
            keys += schema_keys(kind, f"{key}.")
        elif key == "model.layers":
            keys.append((key, "[]", "list of layers"))
            keys += schema_keys(schema.LayerConfig, f"{LAYER_PREFIX}.")
        else:
            keys.append((key, _schema_default(item), _type_name(kind)))
    return keys


def _schema_default(item) -> object:
    if item.default is not MISSING:
        return item.default
    if item.default_factory is not MISSING:
        return item.default_factory()
    return "(required)"  # type: a layer's


def _type_name(kind: object) -> str:
    text = str(kind).replace("typing.", "").replace("convscope.config.schema.", "")
    text = re.sub(r"<class '(\w+)'>", r"\1", text)
    return re.sub(r"Union\[(\w+), NoneType\]", r"Optional[\1]", text)


def yaml_keys(files: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """key -> (value as written, comment) from the config files (data/*.yaml under data.)."""
    found: dict[str, tuple[str, str]] = {}
    for name in files:
        prefix = "data." if name.startswith("data/") else ""

        def walk(keys, prefix=prefix):
            for key in keys:
                found.setdefault(prefix + key.path, (key.default, key.comment))
                walk(key.children)

        walk(read_config_help(configs_dir() / name).keys)
    return found


def schema_comments() -> dict[tuple[str, str], str]:
    """(class name, field) -> the comment beside the field in schema.py, else the comment
    lines just above it."""
    comments: dict[tuple[str, str], str] = {}
    current, above = "", []
    for line in Path(schema.__file__).read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if line.startswith("class "):
            current, above = line.split()[1].split("(")[0].rstrip(":"), []
        elif stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
        elif (field := re.match(r"^    (\w+): [^=]+(?:=[^#]*)?(?:#\s*(.*))?$", line)):
            comments[(current, field[1])] = field[2] or " ".join(above)
            above = []
        else:
            above = []
    return comments


def check_bounds() -> dict[str, list[str]]:
    """key -> what the checks require of it, read from their source."""
    bounds: dict[str, list[str]] = {}
    for name in CHECK_MODULES:
        module = importlib.import_module(name)
        source = Path(module.__file__).read_text(encoding="utf-8")
        names = vars(module)
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "in_range" and isinstance(node.args[0], ast.Constant):
                bounds.setdefault(node.args[0].value, []).append(
                    _range_text(node, source, names))
            elif name == "ConvscopeError" and node.args:
                text = _message_template(node.args[0], source, names)
                said = re.match(r"^([\w.]+):? (must .*?)(?:, got .*|$)", text)
                if said:
                    bounds.setdefault(said[1], []).append(said[2])
    return bounds


def _value(node: ast.AST, source: str, names: dict) -> str:
    """An expression of the checks as its value where it names module constants (MAX_FFT),
    else as written (data.n_fft: a value of the config being checked)."""
    text = ast.get_source_segment(source, node)
    try:
        value = eval(compile(ast.Expression(node), "<check>", "eval"), dict(names))
    except Exception:  # it reads the checked config or a local: shown as written
        return text
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) \
        and abs(value) >= 10000 else str(value)


def _range_text(node: ast.Call, source: str, names: dict) -> str:
    args = [_value(arg, source, names) for arg in node.args[2:4]]
    args += ["None"] * (2 - len(args))
    keywords = {k.arg: k.value for k in node.keywords}
    low_open = isinstance(keywords.get("low_open"), ast.Constant) and keywords["low_open"].value
    low, high = args
    if high == "None":
        return f"must be {'>' if low_open else '>='} {low}"
    return f"must be in {'(' if low_open else '['}{low}, {high}]"


def _message_template(node: ast.AST, source: str, names: dict) -> str:
    """An f-string's text with each {expression} evaluated where it names constants."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant)
                       else _value(part.value, source, names) for part in node.values)
    return ""


def render() -> str:
    comments, bounds = schema_comments(), check_bounds()
    lines = ["# Configuration reference", "",
             "<!-- generated by scripts/config_reference.py from src/convscope/config/schema.py, "
             "configs/*.yaml and the checks; do not edit -->", "",
             "Every key convscope's commands take, set on the command line as `key=value` "
             "(`convscope run plots.dpi=150`). The default is what the command's config file "
             "writes (else the schema's), the comment is the one written beside the key there "
             "(else in the schema), and the bounds are what the checks require: outside them a "
             "run stops before it starts with one `error:` line naming the key. Every number must "
             "also be finite and fit 64 bits. Layer keys not set take torch's default for that "
             "layer type.", ""]
    done: set[str] = set()
    for title, cls, files in COMMANDS:
        written = yaml_keys(files)
        rows = [row for row in schema_keys(cls) if row[0] not in done]
        done.update(row[0] for row in rows)
        lines += [f"## {title}", "", "| key | default | type | bounds | comment |",
                  "|---|---|---|---|---|"]
        for key, default, kind in rows:
            value, comment = written.get(key, ("", ""))
            owner = _owner(cls, key)
            comment = comment or comments.get((owner, key.rsplit(".", 1)[-1]), "")
            shown = value if value else _plain(default)
            shown = "(required)" if shown == "???" else shown
            lines.append(f"| `{key}` | {_cell(shown)} | {_cell(kind)} | "
                         f"{_cell('; '.join(dict.fromkeys(bounds.get(key, []))))} | "
                         f"{_cell(comment)} |")
        lines.append("")
    return "\n".join(lines)


def _owner(cls: type, key: str) -> str:
    """The schema class that declares the key's last part."""
    if key.startswith(LAYER_PREFIX):
        return "LayerConfig"
    hints, owner = typing.get_type_hints(cls), cls
    for part in key.split(".")[:-1]:
        owner = hints[part]
        hints = typing.get_type_hints(owner)
    for base in owner.__mro__:  # a field of the base (RunConfig's, in LearnRunConfig)
        if key.rsplit(".", 1)[-1] in getattr(base, "__annotations__", {}):
            return base.__name__
    return owner.__name__


def _plain(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _cell(text: str) -> str:
    return f"`{text}`" if text and "|" not in text and text == text.strip() and " " not in text \
        else str(text).replace("|", "\\|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="write the reference here (else print it)")
    args = parser.parse_args()
    text = render()
    if args.write:
        args.write.write_text(text, encoding="utf-8")
        print(f"wrote {args.write}")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
