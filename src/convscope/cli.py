"""Shared behaviour of the Hydra entry scripts: one `error:` line and exit status 2 on bad input.

Hydra normally catches exceptions itself, prints a multi-line report and exits 1, hiding the
real error behind HYDRA_FULL_ERROR. We let exceptions reach us instead and word them as one line.
`hydra.verbose=true` on the command line (or HYDRA_FULL_ERROR=1) shows the full traceback.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
import shlex
import sys
from typing import Any, Callable, NoReturn, Optional, Sequence, TypeVar

from convscope.errors import ConvscopeError
from convscope.oserrors import describe_os_error, log_file_failures

EXIT_USAGE = 2
MAX_OVERRIDE_CHARS = 16384  # ~4000 numbers: Hydra parses that in a few seconds
HYDRA_GROUP_NOT_NAMED = "Config group override must be a string or a list"  # data=null
HYDRA_MODE_CONFLICT = "Only one of --run, --multirun, --cfg"  # hydra._internal.utils._run_hydra
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> NoReturn:
    """Print `error: message` as a single line on stderr and exit with status 2."""
    one_line = " ".join(message.split())
    print(f"error: {one_line}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def wants_traceback(argv: list[str]) -> bool:
    decided = os.environ.get("CONVSCOPE_TRACEBACK")
    if decided is not None:  # run_entry decided before it set HYDRA_FULL_ERROR itself
        return decided == "1"
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        return True
    return any(arg.startswith("hydra.verbose=") and arg.split("=", 1)[1] not in ("false", "False", "")
               for arg in argv)


def describe_config_error(exc: BaseException) -> str:
    """Hydra/OmegaConf errors span several lines (and a cause); keep what names the culprit."""
    key_error = layer_key_error(exc.__cause__) or unknown_key_error(exc.__cause__)
    if key_error:
        return key_error
    parts: list[str] = []
    for err in (exc, exc.__cause__):
        if err is None:
            continue
        for line in str(err).splitlines():
            line = line.strip()
            if line.startswith("Config search path"):
                break  # Hydra appends its search path: noise for a user who mistyped a name
            if not line or line.startswith(("full_key:", "object_type", "reference_type")):
                continue
            if line not in parts:
                parts.append(line)
    return " ".join(parts) or type(exc).__name__


def layer_key_error(cause: Optional[BaseException]) -> Optional[str]:
    """An override of a layer that is not there (`model.layers.7.stride=2` on a 2-layer stack:
    OmegaConf says "dict is not a subclass of LayerConfig") or of a key a layer does not have
    (`model.layers.0.foo=1`), worded with the layer's full key; None for any other error."""
    full_key = str(getattr(cause, "full_key", "") or "")
    if not full_key.startswith("model.layers["):
        return None
    key = re.sub(r"\[(\d+)\]", r".\1", full_key)  # model.layers[0].layers[7] -> dotted
    parent = getattr(cause, "parent_node", None)
    index = getattr(cause, "key", None)
    if getattr(cause, "object_type", None) is list and parent is not None:
        count = len(parent)
        if str(index).isdigit() and int(str(index)) >= count:
            block = key.rsplit(".layers.", 1)[0]
            where = "the stack" if block == "model" else f"the block {block}"
            span = f" ({0}-{count - 1})" if count else ""
            return (f"{key}: {where} has {count} layer{'s' if count != 1 else ''}{span}; "
                    "a layer is added by giving the whole list, model.layers=[...]")
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError  # as run_entry's

    object_type = getattr(cause, "object_type", None)
    if (isinstance(cause, (ConfigAttributeError, ConfigKeyError))
            and getattr(object_type, "__name__", "") == "LayerConfig"):
        return f"{key}: a layer has no key {index!s}{_did_you_mean(str(index), object_type)}"
    return None


def unknown_key_error(cause: Optional[BaseException]) -> Optional[str]:
    """An override of a key the schema does not have (`modle=sinc_x2`, `data.strat=1`,
    `plots.enable=false`): the key and the nearest one it has. Hydra's own advice, `+modle=...`,
    would add the key, which the schema then rejects. None for any other error."""
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError  # as run_entry's

    schema = getattr(cause, "object_type", None)
    if not isinstance(cause, (ConfigAttributeError, ConfigKeyError)) or \
            not dataclasses.is_dataclass(schema):
        return None
    full_key = str(getattr(cause, "full_key", "") or getattr(cause, "key", ""))
    name = str(getattr(cause, "key", "") or full_key.rsplit(".", 1)[-1])
    section = full_key.rsplit(".", 1)[0] + "." if "." in full_key else ""
    return f"{full_key}: no such key{_did_you_mean(name, schema, section)}"


def _did_you_mean(name: str, schema: type, section: str = "") -> str:
    """'; did you mean stride?' (data.start?, with its section) for a near miss of one of the
    schema's fields, else the fields."""
    fields = [field.name for field in dataclasses.fields(schema)]
    close = difflib.get_close_matches(name, fields, n=1)
    return f"; did you mean {section}{close[0]}?" if close else f"; its keys: {', '.join(fields)}"



def reports_errors(task: F) -> F:
    """Wrap a Hydra task so a ConvscopeError exits 2 with one line, inside the job.

    Exiting from inside the job (SystemExit is not an Exception, so Hydra lets it through) avoids
    Hydra's own "Error executing job with overrides" line on stderr.
    """

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from convscope.commands_rundir import abandon_unopened  # Hydra's state: with the job

        try:
            try:
                with log_file_failures() as log_failures:  # run.log on a full disk: quiet, then
                    result = task(*args, **kwargs)
            except BaseException:
                abandon_unopened()  # refused before it began: no run dir left behind
                raise
            if log_failures:  # ... one line for it, exit 2: the run's record is incomplete
                raise log_failures[0]
            return result
        except ConvscopeError as exc:
            if wants_traceback(sys.argv):
                raise
            fail(str(exc))
        except OSError as exc:  # a path the OS refused (full disk, no permission): not a bug
            if wants_traceback(sys.argv):
                raise
            fail(describe_os_error(exc, sys.argv[1:], _job_dir()))

    return wrapper  # type: ignore[return-value]


def run_entry(hydra_main: Callable[[], Any]) -> None:
    """Call a `@hydra.main` function, turning bad input of any kind into `error: ...`, exit 2."""
    # Hydra's error types only once an entry script runs: `fail` and `reports_errors` need none
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    # SIGINT/SIGTERM -> one line, exit 130/143; its module reads Hydra's state: loaded with Hydra
    from convscope.commands_signals import interrupts_reported

    show_traceback = wants_traceback(sys.argv)
    if keyless_override(sys.argv[1:]):
        fail(keyless_override(sys.argv[1:]))
    too_long = next((arg for arg in sys.argv[1:] if len(arg) > MAX_OVERRIDE_CHARS), None)
    if too_long is not None:  # Hydra's grammar parses ~1 ms an element: 20000 taps, 35 s
        fail(f"{too_long.split('=', 1)[0]}: an override of {len(too_long)} characters, more "
             f"than {MAX_OVERRIDE_CHARS} the command line takes; long arrays go in from Python "
             "(convscope.explain(weight=array), convscope.run) or a file")
    os.environ["CONVSCOPE_TRACEBACK"] = "1" if show_traceback else "0"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let exceptions propagate to us instead of Hydra's report
    # hydra/launcher=submitit_slurm waits for every job and reports a killed one (sweep/slurm*.py)
    from convscope.sweep.slurm_jobs import register_slurm_launcher

    register_slurm_launcher()
    try:
        with interrupts_reported(show_traceback):
            hydra_main()
    except ConvscopeError as exc:
        if show_traceback:
            raise
        fail(str(exc))
    except (HydraException, OmegaConfBaseException) as exc:
        if show_traceback:
            raise
        fail(unparsable_override_hint(sys.argv[1:]) or describe_config_error(exc))
    except ValueError as exc:  # Hydra's own checks, before any job: one line like the rest
        if show_traceback:
            raise
        if str(exc).startswith(HYDRA_MODE_CONFLICT):
            fail(f"{exc}: --cfg/--info print the composed config or Hydra's view and run "
                 "nothing, so they take no -m; drop one of them")
        if str(exc).startswith(HYDRA_GROUP_NOT_NAMED):
            fail(group_not_named(sys.argv[1:]))
        raise
    except OSError as exc:  # Hydra making the run dir (an existing file, /proc/x, read-only)
        if show_traceback:
            raise
        fail(describe_os_error(exc, sys.argv[1:], _job_dir()))

    except Exception as exc:
        if show_traceback or multirun_failure(sys.argv, exc) is None:
            raise
        fail(multirun_failure(sys.argv, exc))


def keyless_override(args: Sequence[str]) -> Optional[str]:
    """`=1`, `+=`: an override with nothing before its `=` (Hydra fails on an assertion)."""
    for arg in args:
        if "=" in arg and not arg.split("=", 1)[0].lstrip("+~"):
            return f"{arg!r}: an override needs a key before '=' (key=value, e.g. seed=1)"
    return None


def group_not_named(args: Sequence[str]) -> str:
    """`data=null`: a config group set to no option (Hydra's words are about its own types)."""
    nulls = [arg.split("=", 1)[0] for arg in args if "=" in arg and "." not in arg.split("=")[0]
             and arg.split("=", 1)[1].strip() in ("null", "~", "")]
    group = nulls[0].lstrip("+~") if nulls else "a config group"
    return (f"{group}: a config group takes the name of one of its options ({group}=<name>; "
            f"--help lists them), not null; to keep the default, leave {group}= out")


def _job_dir() -> Optional[str]:
    """The run dir of this job: Hydra's while the job runs; once Hydra has given up (it unsets
    its config), the one the command line names; None if neither is known."""
    from hydra.core.hydra_config import HydraConfig  # Hydra: lazy, as in run_entry
    from omegaconf import OmegaConf  # as Hydra above

    if HydraConfig.initialized():
        # a config Hydra set up but never ran a job with (compose, a job that failed to start)
        # has no output_dir yet: fall back to the command line's
        known = OmegaConf.select(HydraConfig.get(), "runtime.output_dir", default=None,
                                 throw_on_missing=False)
        if known is not None:
            return str(known)
    named = [arg.split("=", 1)[1] for arg in sys.argv[1:]
             if arg.startswith(("hydra.run.dir=", "hydra.sweep.dir="))]
    return named[-1] if named else None


def multirun_failure(argv: Sequence[str], exc: BaseException) -> Optional[str]:
    """A multirun's jobs record their own errors (convscope.sweep.failures), so an exception
    that still reaches the entry point came from the launcher or sweeper (submitit_slurm where
    SLURM is absent, say): one line naming it. None outside a multirun."""
    if not any(arg in ("-m", "--multirun") or arg == "hydra.mode=MULTIRUN" for arg in argv):
        return None
    launcher = next((arg for arg in argv if arg.lstrip("+").startswith("hydra/launcher=")), "")
    return (f"{launcher + ': ' if launcher else ''}the multirun stopped: "
            f"{type(exc).__name__}: {exc}")


def unparsable_override_hint(args: Sequence[str]) -> Optional[str]:
    """For the first override Hydra's grammar rejects, what it said and the quoted form that works.

    Paths with parentheses, or with `~` and a space, are common in file names but are grammar
    in Hydra's override language; a double-quoted value is taken literally (convscope expands `~`
    itself).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser  # Hydra: lazy, as above
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            parser.parse_override(arg)
        except HydraException as exc:  # the grammar's errors are plain HydraExceptions
            key, value = arg.split("=", 1)
            reason = " ".join(str(exc).split()).split(" See https://")[0]
            quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            return (f"{key}: Hydra cannot parse {arg!r} ({reason}); quote the value: "
                    f"{shlex.quote(f'{key}={quoted}')}")
    return None


def model_label(name: str, overrides: Sequence[str]) -> str:
    """The model as the log and the report name it: the preset's name, unless the command line
    replaced its layers (model.layers=[...], shown as typed) or changed some of them."""
    plain = [override.lstrip("+~") for override in overrides]
    if any(override.startswith("model.name=") for override in plain):
        return name  # the user named it
    if any(override.startswith("model.layers=") for override in plain):
        return "inline " + next(o for o in plain if o.startswith("model.layers="))
    changed = [override for override in plain if override.startswith("model.layers.")]
    return f"{name} with {' '.join(changed)}" if changed else name
