"""The run entry (convscope.commands.run_main) called in-process, up to the end of planning.

Starting scripts/run.py costs 2-3 s of imports per call; the property test of the CLI boundary
(tests/test_cli_property.py) needs hundreds of calls, so it drives the same entry here: sys.argv
patched, Hydra's parser, composition and callbacks as the CLI runs them, convscope.cli's error
handling, to_run_config's checks, then `plan_only` in place of the pipeline (read the input,
plan the stack, the rates and the evaluate stage; nothing is built or run). A few real
subprocess runs in the test check that this harness answers as the CLI does.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from unittest import mock


@dataclass(frozen=True)
class Outcome:
    code: object  # the exit status, or "traceback" / "hang" when the entry did not exit cleanly
    stderr: str
    detail: str = ""  # the traceback, when there was one

    def problem(self) -> Optional[str]:
        """Why this outcome breaks the CLI's promise (exit 0, or exit 2 with one `error:` line,
        never a traceback), or None."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error:")]
        if self.code in ("traceback", "hang"):
            return f"{self.code}: {self.detail}"
        if "Traceback (most recent call last)" in self.stderr:
            return f"exit {self.code} with a traceback on stderr: {self.stderr}"
        if self.code == 0:
            return f"exit 0 with an error line: {errors}" if errors else None
        if self.code == 2:
            return None if len(errors) == 1 else f"exit 2 with {len(errors)} error lines: {lines}"
        return f"exit {self.code!r}: {lines}"


def plan_only(cfg, out_dir: Path, user_dir: Path, command=None) -> None:
    """run_job's planning: what is checked before a stack is built or a file written."""
    from convscope.corpus.run import is_corpus, list_corpus, shard
    from convscope.pipeline.single import stack_input
    from convscope.pipeline.stages import plan_evaluate_stage
    from convscope.pipeline.streamed import readable_span
    from convscope.stack.plan import plan_stack
    from convscope.stack.rates import exact_rate, layer_rates, upsampling_factor

    if cfg.model.target is not None:  # imports and runs user code: not this test's business
        return
    if is_corpus(cfg.data.path, user_dir):
        shard(list_corpus(cfg.data.path, user_dir), cfg.data.shard, cfg.data.num_shards)
        return
    span = readable_span(cfg, user_dir)
    source = span if span is not None else stack_input(cfg, user_dir)
    plans = plan_stack(cfg.model.layers, source.shape, causal=cfg.model.causal)
    input_rate = exact_rate(source.sample_rate, "data.sr")
    rates = layer_rates(plans, input_rate)
    plan_evaluate_stage(cfg, plans[-1].output_shape[1], upsampling_factor(plans), input_rate,
                        rates[-1], cfg.data.features != "waveform")


class _Hang(BaseException):
    pass


def _alarm(_signum, _frame):
    raise _Hang()


def run_in_process(args: list[str], timeout_s: int = 20, full: bool = False) -> Outcome:
    """scripts/run.py <args> in this process, through planning (see the module docstring); with
    `full`, the whole run (build, forward, WAVs, plots, report) as the CLI does it."""
    from hydra.core.global_hydra import GlobalHydra

    import convscope.commands as commands

    err, out = io.StringIO(), io.StringIO()
    saved_argv, saved_env = sys.argv, dict(os.environ)
    sys.argv = ["run.py", *args]
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(timeout_s)
    try:
        job = commands.run_job if full else plan_only
        with mock.patch.object(commands, "run_job", job), redirect_stderr(err), \
                redirect_stdout(out):
            commands.run_main()
        return Outcome(0, err.getvalue())
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code
        return Outcome(code, err.getvalue())
    except _Hang:
        return Outcome("hang", err.getvalue(), f"no answer within {timeout_s} s")
    except BaseException:  # noqa: BLE001 - anything else reaching the user is a traceback
        return Outcome("traceback", err.getvalue(), traceback.format_exc())
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        GlobalHydra.instance().clear()
