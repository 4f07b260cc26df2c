"""`convscope <command>` and `python -m convscope`: the help each command gives (read against the
config files it quotes), its examples (composed by Hydra), and one-line errors for typos."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml
from omegaconf import OmegaConf

from convscope import commands
from convscope.commands_help import SUBCOMMANDS
from convscope.commands_main import main
from convscope.config.convert import register_configs
from tests.helpers import REPO

HYDRA_COMMANDS = [name for name, command in SUBCOMMANDS.items() if command.config]
KEY_WITH_COMMENT = re.compile(
    r"^(?P<indent> *)(?P<key>\w+):(?P<value>[^#]*?)\s+#\s*(?P<comment>.+)$")


@pytest.fixture(autouse=True)
def run_schema_restored():
    """`convscope chunks` swaps this process's run schema for the chunks one (as
    convscope-chunks does in its own process); the next test gets the run schema back. Hydra's
    job logging adds root handlers on this test's captured streams: they go too, or a later
    test's log record meets a closed stream."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    register_configs()
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level


def flat(text: str) -> str:
    return " ".join(text.split())


def commented_keys(config: str) -> list[tuple[str, str, str]]:
    """(key, value, comment) of every key line with a comment outside hydra:/defaults:, read
    straight from the YAML file the help quotes."""
    found, skipping = [], False
    for line in (REPO / "configs" / f"{config}.yaml").read_text().splitlines():
        if re.match(r"^(hydra|defaults):", line):
            skipping = True
            continue
        if skipping and (not line.strip() or line.startswith((" ", "#"))):
            continue
        skipping = False
        match = KEY_WITH_COMMENT.match(line)
        if match:
            found.append((match["key"], match["value"].strip(), match["comment"].strip()))
    return found


def help_of(capsys, *args: str) -> str:
    main(list(args))
    return capsys.readouterr().out


def error_of(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_python_dash_m_convscope_lists_every_command_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "convscope", "--help"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 0, proc.stderr
    listed = re.findall(r"^  (\w+) +(\S.*)$", proc.stdout, re.MULTILINE)
    assert [name for name, _ in listed] == ["run", "explain", "learn", "design", "chunks",
                                            "tensorboard"]
    assert all(len(line) > 20 for _, line in listed)


@pytest.mark.parametrize("config", ["run", "explain", "learn", "design", "chunks"])
def test_help_quotes_every_commented_key_of_its_config(capsys, config):
    text = flat(help_of(capsys, config, "--help"))
    assert text.startswith(f"usage: convscope {config}")
    for key, value, comment in commented_keys(config):
        assert f"{key}={value}" in text if value else f"{key}.*" in text, key
        assert flat(comment) in text, (key, comment)
    assert f"convscope {config} --cfg job" in text
    assert len(re.findall(rf"^  convscope {config}\b", help_of(capsys, config, "-h"),
                          re.MULTILINE)) == 3


def test_run_help_lists_groups_with_their_choices_and_the_data_keys(capsys):
    text = help_of(capsys, "run", "--help")
    models = sorted(p.stem for p in (REPO / "configs" / "model").glob("*.yaml"))
    data = sorted(p.stem for p in (REPO / "configs" / "data").glob("*.yaml"))
    assert all(name in flat(text) for name in models + data)
    assert re.search(r"^  model=seed_example ", text, re.MULTILINE)
    assert re.search(r"^    start=2\.0$", text, re.MULTILINE)  # data.start, from data/sample.yaml


@pytest.mark.parametrize("config", ["explain", "design"])
def test_help_lists_only_what_the_command_accepts(capsys, config):
    text = help_of(capsys, config, "--help")
    assert "config groups" not in text
    assert not re.search(r"^ +(data|model)[=.]", text, re.MULTILINE)


def test_explain_help_lists_every_example_name(capsys):
    from convscope.explainer.catalogue import CATALOGUE

    text = help_of(capsys, "explain", "--help")
    for example in CATALOGUE:
        assert re.search(rf"^  {example.name} +\S", text, re.MULTILINE), example.name


def test_the_convscope_dash_commands_give_the_same_help(capsys):
    for name in HYDRA_COMMANDS:
        with mock.patch.object(sys, "argv", [f"convscope-{name}", "--help"]):
            getattr(commands, f"{name}_main")()
        assert capsys.readouterr().out == help_of(capsys, name, "--help")


@pytest.mark.parametrize("name", HYDRA_COMMANDS)
def test_every_help_example_composes(capsys, name, tmp_path):
    """Each example's overrides as Hydra composes them (--cfg job prints, runs nothing)."""
    for example in SUBCOMMANDS[name].examples:
        # a sweep (-m a=2,4) is composed at its first point: --cfg takes no -m
        sweep = "-m" in example.split()
        args = [arg.split(",")[0] if sweep else arg for arg in example.split()[2:] if arg != "-m"]
        with mock.patch.object(sys, "argv", ["convscope", name, *args, "--cfg", "job"]):
            main()
        composed = OmegaConf.create(capsys.readouterr().out)
        for arg in args:
            key, value = arg.split("=", 1)
            if key in ("data", "model"):  # a group: its file's values, named after it
                assert value in str(OmegaConf.select(composed, f"{key}.path" if key == "data"
                                                     else "model.name")), arg
            else:
                assert OmegaConf.select(composed, key) == yaml.safe_load(value), arg


@pytest.mark.parametrize("typo, meant", [
    ("modle=sinc_x2", "did you mean model?"),
    ("data.strat=1", "did you mean data.start?"),
    ("plots.enable=false", "did you mean plots.enabled?"),
])
def test_a_top_level_or_section_key_typo_says_what_was_meant(capsys, tmp_path, typo, meant):
    line = error_of(capsys, "run", typo, f"hydra.run.dir={tmp_path / 'run'}")
    assert line.endswith(meant) and line.startswith(f"error: {typo.split('=')[0]}: no such key")
    assert "+" not in line  # not Hydra's advice to add the key


def test_an_explain_key_typo_is_worded_the_same(capsys, tmp_path):
    line = error_of(capsys, "explain", "exmaple=tconv1d_basic",
                    f"hydra.run.dir={tmp_path / 'run'}")
    assert line == "error: exmaple: no such key; did you mean example?"


def test_an_unknown_command_is_one_line_naming_the_near_one(capsys):
    assert error_of(capsys, "rnu", "model=sinc_x2").startswith(
        "error: convscope: no command 'rnu'; did you mean run?")


def test_the_subcommand_runs_the_same_entry(tmp_path, capsys):
    out = tmp_path / "run"
    with mock.patch.object(sys, "argv", ["convscope", "run", "plots.enabled=false",
                                         "evaluate.enabled=false", f"hydra.run.dir={out}"]):
        main()
    assert (out / "shapes.json").is_file() and (out / "audio" / "layer1_ch2.wav").is_file()
    # the page records a command that re-runs it: the convscope-run beside the interpreter
    page = (out / "index.html").read_text()
    assert f"python {Path(sys.executable).parent / 'convscope-run'} plots.enabled=false" in page


def test_a_refused_run_leaves_no_folder_not_even_the_dated_parents(tmp_path):
    """The run dir's claim makes outputs/<command>/<date>/ too; a run refused before it opens
    its dir removes what its claim made, and never a folder that was there before."""
    def refused(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "convscope", *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        return proc.stderr.strip().splitlines()[-1]

    assert refused("design").startswith("error: sr, hop / in_rate, out_rate: nothing to design")
    assert refused("run", "data.end=0.1").startswith("error: data.end must be greater")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "outputs" / "design").mkdir(parents=True)  # the user's, or an earlier run's
    refused("design")
    assert [p.relative_to(tmp_path).as_posix() for p in sorted(tmp_path.rglob("*"))] == [
        "outputs", "outputs/design"]
