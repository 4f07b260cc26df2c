"""Console commands leave with os._exit once their work is done (commands_exit.py): the log,
stdout and stderr still arrive whole, the exit status is SystemExit's, and anything a normal
exit would wait for (a child process) makes it a normal exit; a non-daemon thread gets
THREAD_GRACE_S to finish, then the command leaves without it (a user's module left it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.helpers import REPO

PROGRAM = """
import logging, sys, threading, time
from convscope.commands_exit import console_command

handler = logging.FileHandler(sys.argv[1], delay=True)
logging.getLogger("t").addHandler(handler)
logging.getLogger("t").setLevel(logging.INFO)

def main():
    logging.getLogger("t").info("x" * 100000)  # more than one buffer: all of it must arrive
    print("y" * 100000)
    sys.stdout.write("no newline at the end")
    {body}

console_command(main)()
print("unreachable: console_command exits")
"""


def run(tmp_path, body: str) -> subprocess.CompletedProcess:
    code = PROGRAM.format(body=textwrap.indent(body, "    ").strip())
    return subprocess.run([sys.executable, "-c", code, str(tmp_path / "log.txt")],
                          capture_output=True, text=True, cwd=REPO, timeout=60,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})


def test_a_finished_command_exits_0_with_every_line_written(tmp_path):
    done = run(tmp_path, "pass")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "y" * 100000 + "\nno newline at the end"
    assert (tmp_path / "log.txt").read_text() == "x" * 100000 + "\n"


def test_exit_statuses_are_systemexits(tmp_path):
    assert run(tmp_path, "sys.exit(2)").returncode == 2
    refused = run(tmp_path, "sys.exit('error: a message')")
    assert (refused.returncode, refused.stderr) == (1, "error: a message\n")
    crashed = run(tmp_path, "raise RuntimeError('a bug')")  # not SystemExit: a traceback
    assert crashed.returncode == 1 and "RuntimeError: a bug" in crashed.stderr


def test_a_thread_that_never_ends_does_not_keep_the_command_alive(tmp_path):
    started = __import__("time").monotonic()
    done = run(tmp_path, "threading.Thread(target=lambda: time.sleep(3600), name='uploader')"
                         ".start()")
    assert done.returncode == 0, done.stderr
    assert __import__("time").monotonic() - started < 30
    assert "exiting without 1 thread(s) still running 2 s after the run ended (uploader)" in (
        tmp_path / "log.txt").read_text() + done.stderr


def test_a_running_thread_or_child_is_waited_for_as_a_normal_exit_would(tmp_path):
    late = tmp_path / "late.txt"
    done = run(tmp_path, f"threading.Thread(target=lambda: (time.sleep(0.3), "
                         f"open({str(late)!r}, 'w').write('done'))).start()")
    assert done.returncode == 0 and late.read_text() == "done"
    probe = ("import multiprocessing as mp, time, sys\n"
             "from convscope.commands_exit import may_skip_teardown\n"
             "if __name__ == '__main__':\n"
             "    p = mp.get_context('spawn').Process(target=time.sleep, args=(0.5,))\n"
             "    p.start(); alive = may_skip_teardown(); p.join()\n"
             "    sys.argv[1:] = ['-m', 'x=1, 2']; multirun = may_skip_teardown(); sys.argv[1:] = []\n"
             "    print(alive, multirun, may_skip_teardown())\n")
    (tmp_path / "probe.py").write_text(probe)
    seen = subprocess.run([sys.executable, str(tmp_path / "probe.py")], capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(REPO / "src")})
    assert seen.stdout.split() == ["False", "False", "True"], seen.stderr
