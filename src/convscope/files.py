"""Write-then-rename, so an interrupted or failed run never leaves a file that looks finished."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Sequence


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp path beside `final`; rename it to `final` only if the block succeeds.

    The temp name keeps the real suffix because writers such as soundfile and matplotlib
    pick the format from it.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.partial{final.suffix}")
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
