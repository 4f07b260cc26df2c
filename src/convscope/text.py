"""Numbers, vectors and small tables as plain text for the terminal (used by the explainer)."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np

BLANK = "·"  # a position a kernel copy or window does not reach (unlike a computed 0)


def fmt_number(value: float, decimals: int = 4) -> str:
    """Integers without a decimal point, others to at most `decimals` places: 2, 1.1, -0.1235."""
    value = float(value)
    if not np.isfinite(value):
        return str(value)
    if abs(value - round(value)) < 1e-9:
        return str(int(round(value)))
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_macs(macs: float) -> str:
    """A MAC count with the unit that keeps it readable: 26.4 GMAC, 576 kMAC."""
    for scale, unit in ((1e9, "GMAC"), (1e6, "MMAC"), (1e3, "kMAC")):
        if macs >= scale:
            return f"{macs / scale:.3g} {unit}"
    return f"{macs:.3g} MAC"


def fmt_bytes(n: float) -> str:
    """A byte count with the unit that keeps it readable: 2.62 GB, 64 MB, 512 B."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def fmt_vector(values: Sequence[float] | np.ndarray, max_items: int = 24) -> str:
    """[1, 2, 3]; long vectors keep their first and last few items around '...'."""
    values = np.ravel(values)
    if len(values) > max_items:
        head = ", ".join(fmt_number(v) for v in values[: max_items - 4])
        tail = ", ".join(fmt_number(v) for v in values[-3:])
        return f"[{head}, ..., {tail}]"
    return "[" + ", ".join(fmt_number(v) for v in values) + "]"


def fmt_tensor(array: np.ndarray, width: int = 100) -> str:
    """A tensor without size-1 batch/channel axes: a vector, or a matrix on one or more lines.

    Bigger tensors (3+ meaningful axes, or more than 64 values) become their shape and a few
    values, since the point of printing them is the shape.
    """
    array = np.asarray(array)
    squeezed = _drop_batch_and_channel(array) if array.ndim >= 3 else array
    if squeezed.ndim <= 1:
        return fmt_vector(squeezed)
    if squeezed.ndim > 2 or squeezed.size > 64:
        return f"shape {fmt_shape(array.shape)}, values {fmt_vector(array.ravel(), 8)}"
    rows = [fmt_vector(row) for row in squeezed]
    one_line = "[" + ", ".join(rows) + "]"
    if len(one_line) <= width:
        return one_line
    return "[" + (",\n ").join(rows) + "]"


def fmt_shape(shape: Sequence[int]) -> str:
    """(1, 2, 3), and (2,) for one axis, as Python prints shapes."""
    inner = ", ".join(str(int(n)) for n in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def fmt_operand(value: float) -> str:
    """A number as one operand of a printed sum or product: negatives in parentheses."""
    text = fmt_number(value)
    return f"({text})" if text.startswith("-") else text


def indent(text: str, prefix: str) -> str:
    """Indent every line after the first by prefix's width, so multi-line values line up."""
    return text.replace("\n", "\n" + " " * len(prefix))


def table(column_labels: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """Right-aligned columns under a header, row labels left-aligned; returns the lines."""
    cells = [list(column_labels)] + [list(values) for _, values in rows]
    widths = [max(len(row[c]) for row in cells) for c in range(len(column_labels))]
    labels = [""] + [label for label, _ in rows]
    label_width = max(len(label) for label in labels)
    return [f"{label:<{label_width}}  " + " ".join(f"{cell:>{w}}" for cell, w in zip(row, widths))
            for label, row in zip(labels, cells)]


def cells(values: np.ndarray, reached: np.ndarray | None = None) -> list[str]:
    """One text cell per value; unreached positions show BLANK."""
    if reached is None:
        reached = np.ones(len(values), dtype=bool)
    return [fmt_number(v) if r else BLANK for v, r in zip(values, reached)]


def grid_lines(values: np.ndarray, reached: np.ndarray | None = None) -> list[str]:
    """A 2D array as right-aligned rows of cells (unreached cells BLANK)."""
    if reached is None:
        reached = np.ones(values.shape, dtype=bool)
    text = [cells(row, mask) for row, mask in zip(values, reached)]
    width = max(len(cell) for row in text for cell in row)
    return [" ".join(f"{cell:>{width}}" for cell in row) for row in text]


def side_by_side(blocks: Sequence[tuple[str, list[str]]], gap: int = 4) -> list[str]:
    """Place titled blocks of lines next to each other."""
    widths = [max([len(title)] + [len(line) for line in lines]) for title, lines in blocks]
    height = max(len(lines) for _, lines in blocks)
    out = ["".join(f"{title:<{w}}" + " " * gap for (title, _), w in zip(blocks, widths)).rstrip()]
    for r in range(height):
        parts = [(lines[r] if r < len(lines) else "") for _, lines in blocks]
        out.append("".join(f"{p:<{w}}" + " " * gap for p, w in zip(parts, widths)).rstrip())
    return out


def _drop_batch_and_channel(array: np.ndarray) -> np.ndarray:
    """(1, 1, L) -> (L,), (1, C, L) -> (C, L), (1, 1, H, W) -> (H, W): keep the spatial axes."""
    for _ in range(2):
        if array.shape[0] == 1 and array.ndim > 1:
            array = array[0]
    return array


TABLE_HEADER = ("#", "type", "weight", "bias", "params", "MACs", "input", "output")
RECEPTIVE_HEADER = ("RF", "ahead")  # receptive field and lookahead, in input samples


def row_cells(row: Any) -> tuple[str, ...]:
    """One layer's cells under TABLE_HEADER (a LayerRow, or its shapes.json dict)."""
    r = _row_dict(row)
    return (str(r["index"]), r["type"], shape_text(r["weight_shape"]),
            shape_text(r["bias_shape"]), f"{r['params']:,}", f"{r['macs']:,}",
            shape_text(r["input_shape"]), shape_text(r["output_shape"]))


def layer_table(rows: Sequence[Any], names: bool = False, rates: bool = False
                ) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The header and cells of the layer table (LayerRows or their shapes.json dicts).

    After the shapes: RF, the receptive field (input samples, or frames, one output sample
    depends on) and ahead, how many of them lie after the output's time; where there is none,
    the reason in the RF cell ('-' where nothing is known: a config stack's unknown layer).
    describe() adds a name column (`ups.0`) and, given a sample rate, the rate in and out of
    every row; the pipeline's log table has neither (its rows are its config's layer indices).
    """
    dicts = [_row_dict(r) for r in rows]
    header = TABLE_HEADER + RECEPTIVE_HEADER
    body = [row_cells(r) + receptive_cells(r) for r in dicts]
    if names:
        header = header[:1] + ("name",) + header[1:]
        body = [cells[:1] + (r.get("name") or "-",) + cells[1:] for cells, r in zip(body, dicts)]
    if rates:
        header = header + ("rate in (Hz)", "rate out (Hz)")
        body = [cells + (rate_text(r, "sample_rate_in"), rate_text(r, "sample_rate_out"))
                for cells, r in zip(body, dicts)]
    return header, body


def receptive_cells(row: Mapping) -> tuple[str, str]:
    """RF and ahead; where there is no finite receptive field, the reason takes the RF cell
    ('recurrent (LSTM): depends on every earlier sample'), so no blank hides it."""
    if "receptive_field" not in row and row.get("receptive_reason"):
        return row["receptive_reason"], "-"
    return str(row.get("receptive_field", "-")), str(row.get("lookahead", "-"))


def format_table(rows: Sequence[Any], names: bool = False, rates: bool = False) -> str:
    """layer_table as fixed-width text for the log, then each layer's length formula."""
    header, body = layer_table(rows, names, rates)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip()
             for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    dicts = [_row_dict(r) for r in rows]
    label = (lambda r: f"{r.get('name') or '-'} {r['type']}") if names else (lambda r: r["type"])
    lines += [f"layer {r['index']} {label(r)}: {r['formula']}" for r in dicts]
    return "\n".join(lines)


def rate_text(row: Mapping, key: str) -> str:
    """An exact rate as its fraction, with the decimal beside it when it is not a whole number:
    '22050', '11025/128 (86.1328)'; '-' when the row has none."""
    if key not in row:
        return "-"
    fraction = row[f"{key}_fraction"]
    return fraction if "/" not in fraction else f"{fraction} ({row[key]:.6g})"


def _row_dict(row: Any) -> Mapping:
    """A table row as its shapes.json dict: LayerRow (stack/, which imports torch) has as_json()."""
    return row if isinstance(row, Mapping) else row.as_json()


def shape_text(shape: Optional[Sequence[int]]) -> str:
    """[1,3,32000] as the log table, the report and the sweep index write shapes; - for none."""
    return "-" if shape is None else "[" + ",".join(str(n) for n in shape) + "]"
