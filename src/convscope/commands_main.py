"""`convscope <command> [overrides]` (and `python -m convscope`): one command in front of the
convscope-run, -explain, -learn, -design and -chunks entries, plus `convscope tensorboard`.

The subcommand's name is taken off the command line and the rest is handed to the same entry
function the convscope-* command calls, so overrides, -m, --cfg and errors behave identically.
--help is answered here (convscope.commands_help), before Hydra or torch is loaded.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from convscope.cli import fail, reports_errors
from convscope.commands_exit import console_command
from convscope.commands_help import SUBCOMMANDS, main_help, subcommand_help
from convscope.errors import ConvscopeError

HELP_FLAGS = ("-h", "--help")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Dispatch `convscope <command> ...`; returns when the command is done (tests call it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in (*HELP_FLAGS, "help"):
        print(main_help())
        return
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        close = difflib.get_close_matches(name, list(SUBCOMMANDS), n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        fail(f"convscope: no command {name!r}; {hint}commands: {', '.join(SUBCOMMANDS)} "
             "(convscope --help)")
    if any(flag in rest for flag in HELP_FLAGS):
        print(subcommand_help(name))
        return
    if name == "tensorboard":
        tensorboard_main(rest)
        return
    # Hydra reads sys.argv: the entry sees the command line a convscope-<name> command would,
    # down to the program, which the run's index.html records as the command that re-runs it
    sys.argv = [_same_command(name), *rest]
    _entries()[name]()


def tensorboard_main(run_dirs: Sequence[str]) -> None:
    """convscope tensorboard <run dir>...: event files for runs written earlier."""
    if not run_dirs or any(arg.startswith("-") for arg in run_dirs):
        fail("usage: convscope tensorboard <run dir> [<run dir> ...] (convscope tensorboard "
             "--help)")
    _export_all = reports_errors(_export_dirs)  # ConvscopeError / OSError -> one error line
    _export_all([Path(arg) for arg in run_dirs])


def _export_dirs(run_dirs: list[Path]) -> None:
    # board: lazy, so `convscope run` does not load the exporter it may not use
    from convscope.board.export import export_sweep_hparams, export_tree
    from convscope.board.records import records_kept
    from convscope.config.checks import require_tensorboard
    from convscope.rundir import RunDir
    from convscope.sweep.summary import scan_sweep

    require_tensorboard()
    for run_dir in run_dirs:
        if not run_dir.is_dir():
            raise ConvscopeError(f"{run_dir}: no such directory")
        with records_kept(run_dir):
            runs = export_tree(run_dir)
        sessions = []
        if (run_dir / RunDir.MULTIRUN).is_file():  # a sweep root: its HParams table too
            jobs = [job for job in scan_sweep(run_dir) if job.status == "ok"]
            sessions = export_sweep_hparams(run_dir, [(job.name, job.overrides, job.metrics)
                                                      for job in jobs])
        hparams = f" and {len(sessions)} HParams sessions" if sessions else ""
        print(f"{run_dir}: {len(runs)} run{'s' if len(runs) != 1 else ''}{hparams} exported; "
              f"view them: tensorboard --logdir {run_dir}")


def _same_command(name: str) -> str:
    """The installed convscope-<name> beside this program (or the interpreter), which runs what
    `convscope <name>` runs; the program itself where there is none."""
    for folder in (Path(sys.argv[0]).parent, Path(sys.executable).parent):
        script = folder / f"convscope-{name}"
        if script.is_file():
            return str(script)
    return sys.argv[0]


def _entries() -> dict[str, Callable[[], None]]:
    # convscope.commands composes Hydra and registers the schemas: loaded once a command runs
    from convscope import commands

    return {"run": commands.run_main, "explain": commands.explain_main,
            "learn": commands.learn_main, "design": commands.design_main,
            "chunks": commands.chunks_main}


# pyproject's [project.scripts] `convscope` and `python -m convscope`: main, then the quick exit
# every console command takes (commands_exit.py). Tests call main, which returns.
main_command = console_command(main)
