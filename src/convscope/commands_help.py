"""`convscope --help` and `convscope <command> --help`: what each command does, its config groups
and keys with the comments written beside them in configs/<name>.yaml, and three examples.

The keys and comments are read from the YAML files themselves (the comments are what a person
wrote for people), so the help cannot drift from the configs. Hydra's own --help lists every
key of every layer and none of those comments; `--cfg job` still prints the full config.
"""

from __future__ import annotations

import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from convscope.resources import configs_dir

KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_]\w*):(?P<value>[^#]*?)\s*"
                      r"(?:#\s?(?P<comment>.*?))?\s*$")
COMMENT_LINE = re.compile(r"^(?P<indent> *)#\s?(?P<comment>.*?)\s*$")
DEFAULTS_ENTRY = re.compile(r"^\s*-\s*(?P<group>\w+)\s*:\s*(?P<option>\w+)")
DEFAULTS_CONFIG = re.compile(r"^\s*-\s*(?P<config>\w+)\s*(?:#.*)?$")
NOT_FOR_USERS = {"hydra", "defaults"}  # Hydra's settings and the composition list
KEY_COLUMN = 28
WIDTH = 100
# Group keys that live in the group's files: data's keys are shown from its default option's file;
# a model is a list of layers, so one line says how a layer's key is set
MODEL_KEYS = ("model.layers.<i>.<key>=value: one layer's key (kernel_size, stride, padding, "
              "output_padding, ...), e.g. model.layers.1.stride=4; model.layers=[...] replaces "
              "the stack")


@dataclass(frozen=True)
class Subcommand:
    """A `convscope <name>` command: its one line, what it does, three examples."""

    name: str
    summary: str
    description: str
    examples: tuple[str, ...]
    config: Optional[str]  # configs/<config>.yaml; None: not a Hydra command
    usage: str = "[overrides] [-m] [--cfg job]"
    takes_run_keys: bool = False  # its schema holds every run key (learn) besides its file's


@dataclass
class ConfigKey:
    path: str  # dotted: plots.enabled
    default: str  # as written in the YAML ("" for a section)
    comment: str
    depth: int
    children: list["ConfigKey"] = field(default_factory=list)


@dataclass
class ConfigHelp:
    """What a config file offers: its groups (with their choices) and its keys."""

    groups: list[tuple[str, str, list[str]]]  # (group, default option, every option)
    keys: list[ConfigKey]
    composes: list[str]  # other configs it builds on (chunks.yaml: run)


SUBCOMMANDS: dict[str, Subcommand] = {command.name: command for command in (
    Subcommand("run", "the configured stack on an audio segment, or every file of a corpus",
               "Loads a segment of a WAV file, runs it through the stack of Conv1d / "
               "ConvTranspose1d layers the config describes, and writes a run dir: every "
               "layer's shapes and length formula (shapes.json, the log), figures (plots/), "
               "the audio to listen to (audio/), metrics against soxr (metrics.json) and "
               "index.html. A folder or glob in data.path runs every file.",
               ("convscope run model=sinc_x2 data=speech",
                "convscope run model=hifigan_v1 tensorboard=true",
                "convscope run -m model.layers.1.stride=2,4 model.layers.1.output_padding=1"),
               "run"),
    Subcommand("explain", "the tutorials' worked examples against torch, or one step by step",
               "With no arguments, checks every worked example of the catalogue against "
               "torch. example=<name> walks through one step by step and draws scatter.png; "
               "input=... weight=... explains your own numbers.",
               ("convscope explain",
                "convscope explain example=tconv1d_stride",
                "convscope explain input=[1,2,3] weight=[1,0,-1] stride=2 padding=1 "
                "output_padding=1"),
               "explain"),
    Subcommand("learn", "fit the stack's weights to soxr's resampling of the same audio",
               "Fits the stack's weights with Adam so its output matches the evaluate "
               "reference (soxr_hq), then writes what a run writes for the learned stack, plus "
               "the loss curve, the learned kernels and the metrics before and after. Every "
               "key of `convscope run` applies too.",
               ("convscope learn model=artifact_k4s2 learn.steps=200",
                "convscope learn model=sinc_x2 learn.spectral_weight=1",
                "convscope learn model=artifact_k5s2 data=tone tensorboard=true"),
               "learn", takes_run_keys=True),
    Subcommand("design", "exact ConvTranspose1d stacks for sr/hop or in_rate/out_rate, ranked",
               "Lists the ConvTranspose1d stacks whose lengths come out exact for the ratio "
               "(hop, or out_rate / in_rate), scores them (images, stride tone, lookahead, "
               "MACs) and writes the best as model configs (model/best.yaml) in the run dir.",
               ("convscope design sr=22050 hop=256",
                "convscope design in_rate=16000 out_rate=48000",
                "convscope design sr=24000 hop=300 max_stride=10 top=3"),
               "design"),
    Subcommand("chunks", "the stack on independent chunks (naive real-time code) vs one shot",
               "Runs the stack on chunks with no context between them, as naive real-time "
               "code does, against the one-shot output: which samples differ at each chunk "
               "boundary, and why (chunks.json, plots/chunk_errors.png). Every key of "
               "`convscope run` applies too.",
               ("convscope chunks model=hifigan_v1",
                "convscope chunks model=sinc_x2 chunks.seconds=0.05",
                "convscope chunks model=seed_example data=speech chunks.plot_boundaries=5"),
               "chunks"),
    Subcommand("tensorboard", "export a run dir (a corpus or sweep too) as TensorBoard events",
               "Writes <run dir>/tensorboard/ event files from what the run dir holds: its "
               "audio at its sample rates, every figure, the layer table, formulas and "
               "alignment, metrics and cost; a sweep dir also gets an HParams table. Then: "
               "tensorboard --logdir <run dir>. Needs pip install 'convscope[tensorboard]'. "
               "tensorboard=true on a run does the same when it finishes.",
               ("convscope tensorboard outputs/2024-05-01/12-00-00",
                "convscope tensorboard outputs/multirun/2024-05-01/12-00-00",
                "convscope tensorboard run_a run_b"),
               None, usage="<run dir> [<run dir> ...]"),
)}


def main_help() -> str:
    width = max(len(name) for name in SUBCOMMANDS) + 2
    lines = ["usage: convscope <command> [overrides]   (also: python -m convscope ...)", "",
             "See what torch Conv1d / ConvTranspose1d do to audio: shapes, arithmetic, plots, "
             "sound.", "", "commands:"]
    lines += [f"  {name.ljust(width)}{command.summary}" for name, command in SUBCOMMANDS.items()]
    lines += ["", "convscope <command> --help: what it does, its config groups and keys, "
              "examples.", "The convscope-run, -explain, -learn, -design and -chunks commands "
              "are the same commands."]
    return "\n".join(lines)


def answers_help(name: str) -> bool:
    """`convscope-<name> --help` (or -h) prints `convscope <name> --help` and runs nothing;
    Hydra's own help stays under --hydra-help."""
    if not any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        return False
    print(subcommand_help(name))
    return True


def subcommand_help(name: str) -> str:
    """One command's help: what it does, its groups and keys, examples (explain: its examples'
    names too)."""
    command = SUBCOMMANDS[name]
    lines = [f"usage: convscope {name} {command.usage}", ""]
    lines += textwrap.wrap(command.description, WIDTH)
    if command.config is not None:
        config = read_config_help(configs_dir() / f"{command.config}.yaml")
        lines += _groups_lines(config)
        lines += ["", "keys (key=default, then what it means; set one with key=value):"]
        lines += [line for key in _group_keys(config) + config.keys for line in _key_lines(key)]
        for other in config.composes + (["run"] if command.takes_run_keys else []):
            lines += ["", f"and every key of `convscope {other}` (convscope {other} --help)"]
    if name == "explain":
        lines += [""] + _example_names()
    lines += ["", "examples:"] + [f"  {example}" for example in command.examples]
    if command.config is not None:
        lines += ["", f"The full composed config: convscope {name} --cfg job   "
                  f"(Hydra's own flags: convscope {name} --hydra-help)"]
    return "\n".join(lines)


def _example_names() -> list[str]:
    # the explainer's catalogue imports torch (~2 s): only for explain's help
    from convscope.explainer.catalogue import CATALOGUE

    width = max(len(example.name) for example in CATALOGUE) + 2
    return ["example names (example=<name>; with none, every one is checked):"] + [
        f"  {example.name.ljust(width)}{example.summary}" for example in CATALOGUE]


def read_config_help(path: Path) -> ConfigHelp:
    """Groups, keys and their comments from a config file, read line by line: a comment after a
    key is its help, and comment lines indented under it continue that help."""
    groups: list[tuple[str, str, list[str]]] = []
    composes: list[str] = []
    keys: list[ConfigKey] = []
    open_keys: list[ConfigKey] = []  # the key on each depth above the current line
    skipping: Optional[int] = None  # indent of a hydra:/defaults: block being passed over
    last: Optional[ConfigKey] = None
    for line in path.read_text(encoding="utf-8").splitlines():
        key_match, comment_match = KEY_LINE.match(line), COMMENT_LINE.match(line)
        indent = len(line) - len(line.lstrip(" "))
        if skipping is not None and line.strip() and indent > skipping:
            _read_defaults_entry(line, path.parent, groups, composes)
            continue
        skipping = None
        if comment_match:
            if last is not None and len(comment_match["indent"]) > last.depth * 2:
                last.comment = f"{last.comment} {comment_match['comment']}".strip()
            continue
        last = None
        if not key_match:
            continue
        if key_match["key"] in NOT_FOR_USERS and not key_match["indent"]:
            skipping = 0
            continue
        depth = len(key_match["indent"]) // 2
        del open_keys[depth:]
        path_text = ".".join([k.path.rsplit(".", 1)[-1] for k in open_keys] + [key_match["key"]])
        last = ConfigKey(path_text, key_match["value"].strip(),
                         (key_match["comment"] or "").strip(), depth)
        (open_keys[-1].children if open_keys else keys).append(last)
        open_keys.append(last)
    return ConfigHelp(groups, keys, composes)


def _read_defaults_entry(line: str, folder: Path, groups: list, composes: list) -> None:
    entry, other = DEFAULTS_ENTRY.match(line), DEFAULTS_CONFIG.match(line)
    if entry and (folder / entry["group"]).is_dir():
        options = sorted(p.stem for p in (folder / entry["group"]).glob("*.yaml"))
        groups.append((entry["group"], entry["option"], options))
    elif other and (folder / f"{other['config']}.yaml").is_file():
        composes.append(other["config"])  # another command's config (chunks.yaml: run)


def _groups_lines(config: ConfigHelp) -> list[str]:
    if not config.groups:
        return []
    lines = ["", "config groups (group=option; the default first):"]
    for group, default, options in config.groups:
        others = [option for option in options if option != default]
        lines += textwrap.wrap(" | ".join(others), WIDTH,
                               initial_indent=f"  {group}={default}".ljust(KEY_COLUMN),
                               subsequent_indent=" " * KEY_COLUMN)
    return lines


def _group_keys(config: ConfigHelp) -> list[ConfigKey]:
    """data.* from the default data file (data.path, data.start, ...); the model's layer keys."""
    keys = []
    for group, default, _ in config.groups:
        if group == "data":
            options = read_config_help(configs_dir() / group / f"{default}.yaml")
            section = ConfigKey(group, "", f"(as in {group}/{default}.yaml)", 0)
            for key in options.keys:
                key.depth = 1
                section.children.append(key)
            keys.append(section)
        elif group == "model":
            keys.append(ConfigKey("model", "", MODEL_KEYS, 0))
    return keys


def _key_lines(key: ConfigKey) -> list[str]:
    indent = "  " * (key.depth + 1)
    name = key.path.rsplit(".", 1)[-1]
    head = f"{indent}{name}" + (f"={key.default}" if key.default else ".*")
    if len(head) >= KEY_COLUMN - 1:  # a long default (a list): its comment on the next line
        lines = [head] + textwrap.wrap(key.comment, WIDTH, initial_indent=" " * KEY_COLUMN,
                                       subsequent_indent=" " * KEY_COLUMN)
    else:
        lines = textwrap.wrap(key.comment, WIDTH, initial_indent=head.ljust(KEY_COLUMN),
                              subsequent_indent=" " * KEY_COLUMN) or [head]
    for child in key.children:
        lines += _key_lines(child)
    return lines
