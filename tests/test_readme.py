"""Every command the README and the guides in docs/ show works exactly as typed, and every
link between them resolves.

GUIDES is README.md and docs/*.md (design.md excepted: design notes, whose prose names commands
with placeholders such as `[overrides]`). Each line of a ```bash block (backslash continuations
joined) is a command. Most run verbatim in a sandbox: a fresh directory with scripts/ linked to
the checkout's, its own data/ and docs/, a HOME holding the music files the examples name, and the
venv's bin/ first on PATH, as after `. .venv/bin/activate`. A few are too heavy for `make test`
(an hour of audio, a fresh install from the package index, make itself); those are checked
verbatim short of the heavy work, as EXPENSIVE says ("slow only": not in the fast suite at all),
and run for real with `pytest -m slow tests/test_readme.py`; the SLURM sweep runs for real in
tests/test_slurm.py. Lines that start with `$ ` in plain blocks run too, and must print the error
line the guide shows.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import soundfile

from tests.helpers import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
NOT_GUIDES = {"docs/design.md"}  # design notes: `convscope-run [overrides]` is not a command
GUIDES = {"README.md": README, **{
    path.relative_to(REPO).as_posix(): path.read_text(encoding="utf-8")
    for path in sorted((REPO / "docs").glob("*.md"))
    if path.relative_to(REPO).as_posix() not in NOT_GUIDES}}
BIN = Path(sys.executable).parent

# command prefix -> how the fast suite checks it (the slow marker runs every command for real)
EXPENSIVE = {
    "make ": "make -n: the target exists and its recipe parses (make test is what CI runs)",
    "python3 -m venv /tmp/convscope-env": "slow only: tests/test_install.py installs the wheel",
    "/tmp/convscope-env/bin/pip install": "slow only: downloads every dependency",
    "cd /tmp && /tmp/convscope-env/bin/convscope-run": "slow only: needs the install above",
    "python scripts/make_long_audio.py --seconds 3600": "slow only: writes 115 MB",
    "python scripts/bench.py": "slow only: every benchmark takes about 12 minutes "
    "(tests/test_bench.py checks the tables it wrote)",
    "python scripts/run.py data.path=/tmp/hour.wav": "compose: writes 1.6 GB of WAVs",
    "python scripts/run.py -m hydra/launcher=submitit_slurm": "compose: tests/test_slurm.py "
    "(-m slow) runs it as typed on a one-node SLURM cluster it starts",
    "python scripts/run.py -m hydra/launcher=submitit_local": "compose: test_sweeps runs it",
    "python scripts/run.py model=bigvgan_v2_24k": "slow only: 112 M parameters, about a minute",
    "python scripts/run.py model=hifigan_v1 data=speech data.features": "slow only: 3.5 s of "
    "speech through HiFi-GAN V1 (the data.end=1 run above is in the fast suite)",
    "python scripts/run.py model=hifigan_v1 data=speech data.end=null stream.enabled=true":
    "slow only: 16 layer figures of HiFi-GAN V1 (test_feature_streaming streams it against one "
    "shot)",
    "python scripts/run.py model=melgan": "slow only: test_presets checks melgan's shapes and "
    "function",
    "python scripts/run.py data=speech data.features=log_mel data.sr=22050 data.hop_length=240":
    "slow only: test_alignment runs an odd-stride vocoder stack and its fix",
    "python scripts/design.py sr=22050 hop=256 hydra.run.dir=": "slow only: test_designer "
    "designs, then runs the best config with --config-dir",
    "python scripts/make_long_audio.py --seconds 600": "slow only: writes 26 MB for the "
    "command after it",
    "python scripts/run.py model=module model.target=examples/hifigan_generator.py:Generator "
    "model.config_json=config_v1.json model.weights=g_v1.pt frontend=hifigan "
    "data.path=/tmp/ten_minutes.wav": "compose: 10 minutes through the full HiFi-GAN V1 take "
    "over an hour on 2 cores (tests/test_overlap.py streams V1 against one shot)",
    "convscope-chunks model=module model.target=examples/hifigan_generator.py": "slow only: a "
    "forward per leaf of HiFi-GAN V2 (tests/test_chunks_module.py runs V1 and the DAC decoder)",
    "python scripts/run.py model=module model.target=examples/tiny_vocoder.py": "slow only: "
    "test_module_model runs a generator class of its own through the pipeline",
}


def fenced_blocks(markdown: str) -> list[tuple[str, list[str]]]:
    """(info string, lines) of every ``` block, in order."""
    blocks, current, info = [], None, ""
    for line in markdown.splitlines():
        if line.startswith("```"):
            if current is None:
                current, info = [], line[3:].strip()
            else:
                blocks.append((info, current))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def bash_commands(markdown: str) -> list[str]:
    """Every line of the bash blocks, and every command quoted inline in the prose."""
    commands = []
    for info, lines in fenced_blocks(markdown):
        if info == "bash":
            for line in "\n".join(lines).replace("\\\n", " ").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    commands.append(_strip_comment(line))
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    commands += re.findall(r"`((?:python3? scripts/|convscope-|make )[^`*]*)`", prose)  # not convscope-*
    return list(dict.fromkeys(" ".join(c.split()) for c in commands))


def _strip_comment(line: str) -> str:
    """`cmd args   # what it does` -> `cmd args`; a # inside quotes stays."""
    for match in re.finditer(r"\s#", line):
        try:
            shlex.split(line[: match.start()])
        except ValueError:  # unbalanced quotes before it: this # is inside a quoted argument
            continue
        return line[: match.start()].rstrip()
    return line


def error_examples(markdown: str) -> list[tuple[str, str]]:
    """`$ command` lines of plain blocks, each with the line printed under it."""
    examples = []
    for info, lines in fenced_blocks(markdown):
        if info == "":
            examples += [(line[2:], expected) for line, expected in zip(lines, lines[1:])
                         if line.startswith("$ ")]
    return examples


def mode(command: str) -> str:
    return next((why for prefix, why in EXPENSIVE.items() if command.startswith(prefix)), "run")


COMMANDS = list(dict.fromkeys(c for text in GUIDES.values() for c in bash_commands(text)))
BENCH_QUALITY = "python scripts/bench_quality.py --write docs/quality.md"
README_MAX_LINES = 250  # a front door: the rest is in the guides it links


def test_the_readme_is_a_front_door_with_the_commands_a_new_user_needs():
    readme = bash_commands(README)
    assert "make demo" in readme and "make test" in readme
    assert ". .venv/bin/activate" in readme
    assert any(c.startswith("convscope ") for c in readme)
    assert len(README.splitlines()) <= README_MAX_LINES
    for guide in ("docs/learners.md", "docs/vocoders.md", "docs/streaming.md",
                  "docs/configuration.md"):
        assert f"]({guide}" in README, guide
    assert "chromium-driver" in README and ".ci/run" in README  # what make test needs
    assert len(COMMANDS) >= 60 and any(python_blocks(text) for text in GUIDES.values())


# Guides another branch adds; their links may dangle until it lands (then drop them from here)
LINK = re.compile(r"\]\(([^)\s]+)\)|src=\"([^\"]+)\"")


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped, spaces as dashes."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("guide", sorted(GUIDES))
def test_links_resolve(guide):
    """Every relative link (and image) of the README and the guides names a file that exists,
    and a #fragment a heading of that file."""
    where = (REPO / guide).parent
    for match in LINK.finditer(GUIDES[guide]):
        target = match[1] or match[2]
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path, _, fragment = target.partition("#")
        file = (where / path).resolve() if path else REPO / guide
        assert file.exists(), f"{guide}: {target}"
        if fragment and file.suffix == ".md":
            assert fragment in _anchors(file.read_text(encoding="utf-8")), f"{guide}: {target}"


def test_the_explainer_names_docs_that_exist():
    """The explainer's section titles (what it prints) point at docs/design.md, not at a
    DESIGN.md users do not have."""
    from convscope.explainer.catalogue import CATALOGUE

    printed = " ".join(str(value) for example in CATALOGUE for value in vars(example).values())
    named = set(re.findall(r"[\w/]*\.md\b", printed))
    assert "DESIGN.md" not in named and "docs/design.md" in named
    assert all((REPO / name).is_file() for name in named), named


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """Where the commands run: scripts/ of the checkout, copies of data/, an empty docs/, and a
    HOME with ~/music/song.flac (31 s, stereo 44.1 kHz) and ~/music/take (1).wav."""
    root = tmp_path_factory.mktemp("readme")
    (root / "scripts").symlink_to(REPO / "scripts")
    (root / "examples").symlink_to(REPO / "examples")
    shutil.copytree(REPO / "data", root / "data")
    shutil.copy(REPO / "data" / "sample.wav", root / "data" / "sample copy.wav")
    (root / "docs").mkdir()
    music = root / "home" / "music"
    music.mkdir(parents=True)
    t = np.arange(int(32 * 44100)) / 44100
    stereo = 0.3 * np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)], axis=1)
    soundfile.write(str(music / "song.flac"), stereo, 44100, format="FLAC")
    shutil.copy(REPO / "data" / "speech.wav", music / "take (1).wav")
    return root


def run_in(sandbox: Path, command: str, timeout: int = 600, cwd: Optional[Path] = None
           ) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(sandbox / "home"), PATH=f"{BIN}:{os.environ['PATH']}",
               VIRTUAL_ENV=str(BIN.parent))
    return subprocess.run(["bash", "-c", command], cwd=cwd or sandbox, env=env,
                          capture_output=True, text=True, timeout=timeout)


RUN_FOR_REAL = [c for c in COMMANDS if mode(c) == "run" and c != BENCH_QUALITY
                and c != ". .venv/bin/activate"]


# each guide's commands run in order in one directory, as a reader types them (a checkpoint
# written by one command is loaded by the next); a command shown in two guides runs in both
GUIDE_COMMANDS = {guide: bash_commands(text) for guide, text in GUIDES.items()}
GUIDE_OF = {}  # the first guide showing a command
for _guide, _commands in GUIDE_COMMANDS.items():
    for _command in _commands:
        GUIDE_OF.setdefault(_command, _guide)


@pytest.fixture(scope="module")
def ran(sandbox) -> dict[str, subprocess.CompletedProcess]:
    """Every command that runs for real: each guide's in the order it shows them, in a working
    directory of its own (scripts/, examples/ and data/ linked to the sandbox's), the guides as
    many at a time as there are cores. Runs in one directory never share Hydra's
    outputs/<date>/<time>: a run started in the same second gets <time>-1."""
    def run_guide(guide: str, commands: list[str]) -> list[tuple[str, subprocess.CompletedProcess]]:
        workdir = guide_dir(sandbox, guide)
        return [(command, run_in(sandbox, command, cwd=workdir)) for command in commands]

    real = set(RUN_FOR_REAL)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = [pool.submit(run_guide, guide, [c for c in commands if c in real])
                   for guide, commands in GUIDE_COMMANDS.items()]
        ran_ = {}
        for future in futures:  # a command run in two guides: the failing run is the one kept
            for command, proc in future.result():
                if command not in ran_ or proc.returncode != 0:
                    ran_[command] = proc
        return ran_


def guide_dir(sandbox: Path, guide: str) -> Path:
    """The working directory of one guide's commands (made on first use)."""
    workdir = sandbox / "work" / guide.replace("/", "_")
    if not workdir.is_dir():
        workdir.mkdir(parents=True)
        for name in ("scripts", "examples", "data"):
            (workdir / name).symlink_to((sandbox / name).resolve())
        (workdir / "docs").mkdir()
    return workdir


def compose_only(command: str) -> None:
    """Parse the command's overrides as Hydra would (sweeps: their first point) and compose them
    with the configs, hydra/launcher groups included, then check the values."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from convscope.config.convert import register_configs, to_run_config
    from convscope.resources import configs_dir

    args = [a for a in shlex.split(command)[2:] if a != "-m"]
    overrides = []
    for override in OverridesParser.create().parse_overrides(args):
        value = next(iter(override.sweep_string_iterator())) if override.is_sweep_override() \
            else override.get_value_element_as_str()
        overrides.append(f"{override.get_key_element()}={value}")
    register_configs()
    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        cfg = compose("run", overrides=overrides, return_hydra_config=True)
    to_run_config(cfg)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != BENCH_QUALITY
                                     and not mode(c).startswith("slow only")])
def test_readme_command_works_as_typed(command, sandbox, ran):
    how = mode(command)
    if how.startswith("make -n"):
        proc = run_in(sandbox, f"cd {shlex.quote(str(REPO))} && {command.replace('make', 'make -n', 1)}")
        assert proc.returncode == 0, proc.stderr
        return
    if how.startswith("compose"):
        compose_only(command)
        return
    if command == ". .venv/bin/activate":
        proc = run_in(sandbox, f"cd {shlex.quote(str(REPO))} && {command} && command -v convscope-run")
        assert proc.returncode == 0 and proc.stdout.strip().endswith("convscope-run"), proc.stderr
        return
    proc = ran[command]
    assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr


def runs_for_real_when_slow(command: str) -> bool:
    """What -m slow runs for real: the expensive commands, except the make targets (CI runs
    `make test` itself, which installs what `make demo` does; `make bench` and `make sample`
    rewrite committed files) and SLURM (tests/test_slurm.py starts a cluster and runs it)."""
    how = mode(command)
    return how != "run" and not how.startswith("make -n") and "test_slurm" not in how


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in COMMANDS if runs_for_real_when_slow(c)])
def test_expensive_readme_command_for_real(command, sandbox, ran):
    """In its guide's directory, after the guide's commands that run in the fast suite (a
    checkpoint one of them writes is what it loads)."""
    # the install commands are typed in the checkout (pip install ... . reads constraints.txt)
    cwd = REPO if command.startswith("/tmp/convscope-env/bin/pip") else \
        guide_dir(sandbox, GUIDE_OF[command])
    proc = run_in(sandbox, command, timeout=3600, cwd=cwd)
    assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"


def test_bench_quality_reproduces_the_committed_table(sandbox):
    """The README's quality table is docs/quality.md, regenerated by the command it shows."""
    assert BENCH_QUALITY in COMMANDS
    proc = run_in(sandbox, BENCH_QUALITY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (sandbox / "docs" / "quality.md").read_text() == \
        (REPO / "docs" / "quality.md").read_text()


@pytest.mark.parametrize("command, expected", list(dict.fromkeys(
    example for text in GUIDES.values() for example in error_examples(text))))
def test_readme_error_examples_print_what_it_shows(command, expected, sandbox):
    proc = run_in(sandbox, command)
    assert proc.returncode == 2
    shown = expected.replace("/work/main/", f"{REPO}/")  # the README was run in /work/main
    assert proc.stderr.strip() == shown


def python_blocks(markdown: str) -> list[str]:
    return ["\n".join(lines) for info, lines in fenced_blocks(markdown) if info == "python"]


@pytest.mark.parametrize("code", [code for text in GUIDES.values() for code in python_blocks(text)])
def test_readme_python_runs_as_typed(code, sandbox):
    """Each ```python block runs as a script in the sandbox; the formulas its comments promise
    are what it prints."""
    proc = run_in(sandbox, f"python -c {shlex.quote(code)}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for promised in re.findall(r"#\s*(L_out = .+)$", code, re.M):
        assert promised.strip() in proc.stdout
