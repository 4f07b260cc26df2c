"""Write-then-rename, so an interrupted or failed run never leaves a file that looks finished."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import re
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence

PARTIAL = ".partial"  # every temp name holds it: `ls -a` shows what is unfinished
# .{stem}.partial-{host}-{pid}-{n}{suffix}: who wrote it, so a later run can tell a dead
# writer's leftovers from a live writer's file (the host name may itself contain '-')
_PARTIAL_NAME = re.compile(r"^\..*\.partial-(?P<host>.+)-(?P<pid>\d+)-\d+(\.[^.]*)?$")
_counter = itertools.count()


def _host() -> str:
    return socket.gethostname().split(".")[0] or "host"


def partial_path(final: Path) -> Path:
    """A temp name beside `final`, unique per writer (host, process, call): two processes or
    threads writing the same file never share one. It keeps the real suffix because writers
    such as soundfile and matplotlib pick the format from it."""
    final = Path(final)
    return final.with_name(f".{final.stem}{PARTIAL}-{_host()}-{os.getpid()}-{next(_counter)}"
                           f"{final.suffix}")


def is_partial(path: Path) -> bool:
    """A temp file of atomic_path (this naming or the fixed `.x.partial.wav` of before)."""
    name = Path(path).name
    return name.startswith(".") and PARTIAL in name


def partial_is_stale(path: Path) -> Optional[bool]:
    """True if the process that wrote this temp file is gone (it can never be finished),
    False if it still runs, None if that cannot be told (another host, an older naming)."""
    match = _PARTIAL_NAME.match(Path(path).name)
    if match is None or match["host"] != _host():
        return None
    try:
        os.kill(int(match["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False  # another user's live process (or a pid no system has): leave it
    return False


def own_partials(root: Path) -> list[Path]:
    """This process's temp files under `root` (after an interrupt, should a writer's `finally`
    not have run)."""
    mine = f"-{_host()}-{os.getpid()}-"
    return [path for path in partials(root) if mine in path.name]


def partials(root: Path) -> list[Path]:
    """Every temp file of atomic_path under `root`, at any depth."""
    found = []
    for folder, _, names in os.walk(root):
        found.extend(Path(folder) / name for name in names if is_partial(Path(name)))
    return found


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp path beside `final`; rename it to `final` only if the block succeeds
    (an exception, Ctrl-C or SIGTERM included: the temp file is removed)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        # write()/close() errors (ENOSPC at a flush) name no file, and the temp name means
        # nothing to the user: name the file being written, for the one-line error
        if exc.errno is not None and (exc.filename is None or str(exc.filename) == str(tmp)):
            raise OSError(exc.errno, exc.strerror or str(exc), str(final)) from exc
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(final: Path, text: str) -> None:
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")


def shape_cell(shape: Optional[Sequence[int]]) -> str:
    """A shape as one CSV cell: 1x3x32000 ('' for none)."""
    return "" if shape is None else "x".join(str(n) for n in shape)


def csv_cell(value: Any) -> str:
    """None as an empty cell, a shape (list) as 1x3x32000, anything else as str() writes it."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return shape_cell(value)
    return str(value)


def write_csv(path: Path, rows: Iterable[dict], columns: Sequence[str]) -> None:
    """rows (dicts) as CSV with these columns, written atomically; missing keys are empty."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), restval="")
    writer.writeheader()
    writer.writerows({key: csv_cell(value) for key, value in row.items()} for row in rows)
    write_text(Path(path), buffer.getvalue())


NON_FINITE_NOTE = "non_finite"  # the key listing the values written as null


def write_json(final: Path, document: Any) -> None:
    """`document` as strictly valid JSON (RFC 8259: no NaN or Infinity), written atomically.

    Python's json writes NaN and Infinity by default, which strict parsers (browsers' JSON.parse
    aside, jq, Go, Rust serde) reject. A non-finite float becomes null; a dict document then lists
    where under "non_finite" (dotted keys), so a reader can tell "no value" from "not computed".
    """
    replaced: list[str] = []
    clean = _finite_or_null(document, "", replaced)
    if replaced and isinstance(clean, dict):
        clean[NON_FINITE_NOTE] = replaced
    write_text(Path(final), json.dumps(clean, indent=2, allow_nan=False) + "\n")


def _finite_or_null(value: Any, key: str, replaced: list[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        replaced.append(key or "(document)")
        return None
    if isinstance(value, dict):
        return {name: _finite_or_null(item, f"{key}.{name}" if key else str(name), replaced)
                for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item, f"{key}.{index}" if key else str(index), replaced)
                for index, item in enumerate(value)]
    return value
