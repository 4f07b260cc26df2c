"""Which leaf calls of a model get a detailed layer figure (plots.layers).

A deep model has dozens of conv calls (HiFi-GAN V1: 78); a figure each takes minutes and nobody
reads them. The overview figure shows every conv call at a glance; detailed figures go, by
default, to the calls where the rate changes (the upsamplers of a vocoder), and plots.layers
names others by the layer table's row name (ups.0) or row index.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

from convscope.errors import ConvscopeError
from convscope.stack.rows import LayerRow

Requested = Optional[Sequence[Union[int, str]]]
MAX_LISTED = 8  # names an error lists before "..."


def conv_rows(rows: Sequence[LayerRow]) -> list[LayerRow]:
    """The Conv1d / ConvTranspose1d calls (subclasses too: row.conv is set for them)."""
    return [row for row in rows if row.conv is not None]


def rate_changing(row: LayerRow) -> bool:
    return row.rate_in is not None and row.rate_out is not None and row.rate_in != row.rate_out


def figure_rows(rows: Sequence[LayerRow], requested: Requested = None) -> list[int]:
    """Row indices with a detailed figure, in order: `requested` (plots.layers: row names or
    indices, every call of a named module) or, when None, the conv calls whose rate changes (the
    first and last conv call if none does). A name or index the table lacks is an error naming
    plots.layers."""
    if requested is None:
        convs = conv_rows(rows)
        chosen = [row.index for row in convs if rate_changing(row)]
        if not chosen and convs:
            chosen = sorted({convs[0].index, convs[-1].index})
        return chosen
    by_name: dict[str, list[int]] = {}
    for row in rows:
        by_name.setdefault(row.name, []).append(row.index)
    chosen: set[int] = set()
    for item in requested:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise ConvscopeError(f"plots.layers: {item!r} is neither a row name nor a row index")
        if isinstance(item, int) or item.isdigit():
            index = int(item)
            if not 0 <= index < len(rows):
                raise ConvscopeError(f"plots.layers: row {index} does not exist; the layer "
                                     f"table has rows 0-{len(rows) - 1}")
            chosen.add(index)
        elif item in by_name:
            chosen.update(by_name[item])
        else:
            names = [row.name for row in conv_rows(rows)]
            listed = ", ".join(names[:MAX_LISTED]) + (", ..." if len(names) > MAX_LISTED else "")
            raise ConvscopeError(f"plots.layers: no row named {item!r}; the conv rows are "
                                 f"{listed}")
    return sorted(chosen)


def requested_names(rows: Sequence[LayerRow], requested: Requested) -> set[str]:
    """The module names figure_rows picks: what a forward must keep the outputs of."""
    return {rows[i].name for i in figure_rows(rows, requested)}


def choose_evenly(items: list[int], first_choice: set[int], cap: int) -> list[int]:
    """At most `cap` of `items`, in order: those in `first_choice` and the first and last item
    come first (spread evenly if even they are too many), the rest spread evenly over the
    slots left."""
    if len(items) <= cap:
        return list(items)
    must = [i for i in items if i in first_choice or i in (items[0], items[-1])]
    if len(must) >= cap:
        return _spread(must, cap)
    others = [i for i in items if i not in must]
    return sorted(must + _spread(others, cap - len(must)))


def _spread(items: list[int], count: int) -> list[int]:
    """`count` of `items`, evenly spaced (the middle of each of `count` equal stretches)."""
    return [items[int((k + 0.5) * len(items) / count)] for k in range(count)]
