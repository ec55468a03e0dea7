"""How healctl shows a table: rich on a terminal, plain tab-separated rows when piped.

Rich lays a table out for a terminal's width and falls back to 80 columns when stdout is a pipe, which
drops and truncates cells (``healctl incidents | grep escalated`` once found nothing). Outside a terminal a
table is therefore written as one header line and one line per row, cells separated by tabs, markup
removed and never shortened, so ``grep``, ``cut -f`` and ``awk -F'\\t'`` see every column. On a terminal
every column is kept as well: long cells wrap instead of vanishing.

Numbers meant for people are rounded here too (``0.45416666666666666`` reads as ``0.4542``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

SIGNIFICANT = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Sheet:
    """A table's content, independent of where it is shown; cells may hold rich markup."""

    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    # Columns that may wrap on a terminal; the others (ids, statuses, kinds) are never broken.
    wrap: frozenset[str] = frozenset()

    def add(self, *cells: str) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"table {self.title!r}: a row has {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)


def show(console: Console, sheet: Sheet) -> None:
    """Print ``sheet`` for a person on a terminal, or as tab-separated lines for a pipe or a file."""
    if console.is_terminal:
        console.print(rich_table(sheet))
        return
    lines = ["\t".join(sheet.columns), *("\t".join(plain(cell) for cell in row) for row in sheet.rows)]
    console.file.write("\n".join(lines) + "\n")
    console.file.flush()


def rich_table(sheet: Sheet) -> Table:
    table = Table(title=sheet.title)
    for column in sheet.columns:
        if column in sheet.wrap:
            table.add_column(column, overflow="fold", ratio=1)
        else:
            table.add_column(column, no_wrap=True)
    for row in sheet.rows:
        table.add_row(*row)
    return table


def plain(cell: str) -> str:
    """The text of a cell without markup, on one line and free of tabs (so columns stay aligned)."""
    text = Text.from_markup(cell).plain
    return " ".join(text.replace("\t", " ").splitlines())


def rounded(value: Any, digits: int = SIGNIFICANT) -> Any:
    """``value`` with every float (also inside lists and dicts) rounded to ``digits`` significant digits."""
    if isinstance(value, bool) or not isinstance(value, float | dict | list | tuple):
        return value
    if isinstance(value, dict):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item, digits) for item in value]
    return _round_float(value, digits)


def _round_float(value: float, digits: int) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def number(value: float | None, digits: int = SIGNIFICANT) -> str:
    """A number for a table cell: ``-`` when absent, else ``digits`` significant digits."""
    return "-" if value is None else f"{value:.{digits}g}"
