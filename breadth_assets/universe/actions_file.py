"""The universe's `actions:` file, or folder of files: the corporate actions to adjust for.

Each file is either the project's own form (docs/universe.md "Corporate actions")::

    ticker,ex_date,kind,value
    ABC,2019-06-03,split,1:5            # 1 old share becomes 5
    JKL,2022-02-01,factor,0.8312        # a demerger: the price factor itself

or NSE's corporate-actions export (SYMBOL, PURPOSE, EX-DATE, ...), told apart by the header.
A line that cannot be used is refused with the file and line, for its ticker alone: that ticker's
indicators wait until the line is fixed, the others go on.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from breadth_assets.analytics.actions import ACTION_COLUMNS, KINDS, empty_actions, price_factor
from breadth_assets.universe.nse_actions import is_nse_export, parse_nse_actions

OWN_HEADER = ("ticker", "ex_date", "kind", "value")


class ActionsFileError(ValueError):
    """The actions file as a whole cannot be read: the message names the file and why."""


@dataclass
class DeclaredActions:
    rows: pd.DataFrame
    """`analytics.actions.ACTION_COLUMNS`, factor NULL (resolved against the bars later)."""
    problems: dict[str, list[str]] = field(default_factory=dict)
    """Per ticker, its lines that cannot be used (`file line N: reason`)."""
    unreadable: list[str] = field(default_factory=list)
    """NSE lines whose purpose changes the price but gives no factor: declare a factor line."""

    def of(self, tickers: Iterable[str]) -> DeclaredActions:
        wanted = set(tickers)
        return DeclaredActions(
            self.rows[self.rows["ticker"].isin(wanted)].reset_index(drop=True),
            {t: lines for t, lines in self.problems.items() if t in wanted},
            [line for line in self.unreadable if _ticker_of(line) in wanted],
        )


def _ticker_of(problem: str) -> str:
    """The symbol an NSE problem line names right after `line N: `."""
    after = problem.split(": ", 1)[1] if ": " in problem else ""
    return after.split(" ", 1)[0]


def read_actions_path(path: Path) -> DeclaredActions:
    """Every action of the file, or of the folder's `*.csv` files in name order."""
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    rows: list[dict] = []
    declared = DeclaredActions(empty_actions())
    for file in files:
        _read_file(file, rows, declared)
    seen: dict[tuple, dict] = {}
    for row in rows:
        key = (row["ticker"], row["ex_date"], row["kind"])
        first = seen.get(key)
        if first is None:
            seen[key] = row
        elif first["value"] != row["value"]:
            declared.problems.setdefault(row["ticker"], []).append(
                f"{row['origin']}: {row['kind']} on {row['ex_date']:%Y-%m-%d} is declared "
                f"again with another value ({first['origin']}: {first['value']})"
            )
    declared.unreadable = [line for line in declared.unreadable if not _answered(line, seen)]
    frame = pd.DataFrame(list(seen.values()), columns=list(ACTION_COLUMNS))
    if len(frame):
        frame["ex_date"] = pd.to_datetime(frame["ex_date"]).astype("datetime64[us]")
        frame["factor"] = frame["factor"].astype("float64")
        declared.rows = frame.sort_values(["ticker", "ex_date", "kind"], ignore_index=True)
    return declared


_SUGGESTED = re.compile(r"\((\S+),(\d{4}-\d{2}-\d{2}),factor,F\)$")


def _answered(problem: str, seen: dict[tuple, dict]) -> bool:
    """Whether an NSE line's suggested `factor` line has been declared."""
    found = _SUGGESTED.search(problem)
    if not found:
        return False
    return (found.group(1), pd.Timestamp(found.group(2)), "factor") in seen


def _read_file(file: Path, rows: list[dict], declared: DeclaredActions) -> None:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ActionsFileError(f"{file}: cannot be read: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ActionsFileError(f"{file}: not UTF-8 text; save the file as UTF-8") from None
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines) if _content(line)), None)
    if header_at is None:
        return
    header = next(csv.reader([_content(lines[header_at])]))
    if is_nse_export(header):
        actions, unreadable = parse_nse_actions(text, file.name)
        declared.unreadable.extend(unreadable)
        rows.extend(
            _row(a.ticker, a.ex_date, a.kind, a.value, f"{file.name} line {a.line}")
            for a in actions
        )
        return
    if tuple(name.strip().lower() for name in header) != OWN_HEADER:
        raise ActionsFileError(
            f"{file} line {header_at + 1}: the header must be {','.join(OWN_HEADER)} "
            "(or NSE's corporate-actions export with SYMBOL, PURPOSE and EX-DATE)"
        )
    for number, line in enumerate(lines[header_at + 1 :], start=header_at + 2):
        content = _content(line)
        if content:
            _read_line(content, file, number, rows, declared)


def _content(line: str) -> str:
    return line.split("#", 1)[0].strip()


def _read_line(
    content: str, file: Path, number: int, rows: list[dict], declared: DeclaredActions
) -> None:
    origin = f"{file.name} line {number}"
    cells = [cell.strip() for cell in next(csv.reader(io.StringIO(content)))]
    ticker = cells[0].upper() if cells else ""
    if not ticker:
        raise ActionsFileError(f"{file} line {number}: the line names no ticker")
    try:
        if len(cells) != len(OWN_HEADER):
            raise ValueError(f"expected {len(OWN_HEADER)} values, found {len(cells)}")
        _, day, kind, value = cells
        try:
            ex_date = dt.date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"ex_date {day!r} is not a date (YYYY-MM-DD)") from None
        kind = kind.lower()
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
        price_factor(kind, value)
    except ValueError as error:
        declared.problems.setdefault(ticker, []).append(f"{origin}: {error}")
        return
    rows.append(_row(ticker, ex_date, kind, value, origin))


def _row(ticker: str, ex_date: dt.date, kind: str, value: str, origin: str) -> dict:
    return {
        "ticker": ticker,
        "ex_date": pd.Timestamp(ex_date),
        "kind": kind,
        "value": value,
        "factor": float("nan"),
        "origin": origin,
    }
