"""The universe's groups: named sets of tickers (an index, a sector) that breadth is computed for
besides the whole universe.

A group is written in the universe file as a list of symbols, as `{tickers: [...]}`, or as
`{file: ...}`: a list file (one symbol a line), or a CSV file with a ticker column (`Symbol`, or
`ticker`, in any case), either whole or, with `column:`, split into one group per distinct value
of that column (NSE's index constituent files: `column: Industry`). Members are symbols as the
tickers are (stripped, upper-cased, taken as written) but need not be in the universe: the
universe may be `tickers: all`, known only later; `members_in` and `missing_members` sort them
out against the tickers there are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Discriminator, PlainValidator, Tag, model_validator

from breadth_assets.fields import Loc, Strict, a_list, is_null, refusal, relative_path, text
from breadth_assets.schema import ALL_GROUP
from breadth_assets.sources.csv.settings import find_header
from breadth_assets.universe import fields
from breadth_assets.universe.tickers import MAX_SHOWN, SYMBOL_RULE, symbol_problem

RESERVED = ALL_GROUP
"""The name of the whole universe, which no group may take (in any case)."""
DEFAULT_CHART_GROUPS = 3
"""How many groups are charted, the first ones, when none is marked `chart: true`."""
TICKER_HEADERS = ("symbol", "ticker")
"""The header of a CSV file's ticker column, matched ignoring case, in this order."""


@dataclass(frozen=True)
class Group:
    """One group of the universe: its members as written, normalised and without repeats."""

    name: str
    tickers: tuple[str, ...]
    chart: bool = False
    origin: str = ""
    """Where it is defined: `universe.yaml groups.NIFTY50`, `ind_nifty500list.csv column
    Industry`."""


class GroupsError(ValueError):
    """A group cannot be had: refused at `loc` of the universe file, or, when `loc` is None, at
    the line of a group file that the message names."""

    def __init__(self, message: str, loc: Loc | None) -> None:
        super().__init__(message)
        self.message, self.loc = message, loc


def members_in(groups: Iterable[Group], tickers: Iterable[str]) -> dict[str, list[str]]:
    """Each group's members that are among `tickers`, sorted."""
    listed = set(tickers)
    return {group.name: sorted(set(group.tickers) & listed) for group in groups}


def missing_members(groups: Iterable[Group], tickers: Iterable[str]) -> dict[str, list[str]]:
    """Each group's members that are not among `tickers`, sorted; only groups that have any."""
    listed = set(tickers)
    missing = {group.name: sorted(set(group.tickers) - listed) for group in groups}
    return {name: symbols for name, symbols in missing.items() if symbols}


def chart_groups(groups: Sequence[Group]) -> tuple[str, ...]:
    """The names of the groups marked `chart: true`, else of the first few."""
    marked = tuple(group.name for group in groups if group.chart)
    return marked or tuple(group.name for group in groups[:DEFAULT_CHART_GROUPS])


# --- the `groups:` value as written ------------------------------------------------------------


def _member(value: Any) -> str:
    symbol = text(value).upper()
    if symbol_problem(symbol):
        raise ValueError(f"{text(value)!r} is not a valid ticker ({SYMBOL_RULE})")
    return symbol


def _member_list(value: Any) -> list:
    if is_null(value) or value == []:
        raise ValueError("the group has no member")
    return a_list(
        "expected a list of symbols, or a mapping with keys " + ", ".join(GroupMapping.model_fields)
    )(value)


Members = Annotated[
    tuple[Annotated[str, PlainValidator(_member)], ...], BeforeValidator(_member_list)
]


class GroupMapping(Strict):
    """A group as a mapping: `{tickers: [...]}` or `{file: ..., column: ...}`, maybe charted."""

    tickers: Members = ()
    file: Annotated[Path | None, PlainValidator(relative_path)] = None
    column: Annotated[str | None, PlainValidator(text)] = None
    chart: Annotated[bool, PlainValidator(fields.boolean)] = False

    @model_validator(mode="after")
    def _one_kind(self) -> GroupMapping:
        given = self.model_fields_set
        if "tickers" in given and "file" in given:
            raise refusal("give tickers or file, not both", "file")
        if "tickers" not in given and "file" not in given:
            raise refusal("missing; give tickers: [symbols] or file: a list or CSV file", "tickers")
        if "column" in given and "file" not in given:
            raise refusal("column needs file: a CSV file with that column", "column")
        return self


def _form(value: Any) -> str:
    return "mapping" if isinstance(value, dict) else "list"


GROUP_FORMS = ("list", "mapping")
"""The tags of `GroupSpec`'s forms, which pydantic puts in an error's place."""
GroupSpec = Annotated[
    Annotated[Members, Tag("list")] | Annotated[GroupMapping, Tag("mapping")],
    Discriminator(_form),
]
"""One group of the universe file's `groups:` as written."""


def group_mapping(value: Any) -> dict:
    """`groups:`: a mapping of names to groups, or nothing."""
    if is_null(value):
        return {}
    if not isinstance(value, dict):
        raise ValueError(
            "expected a mapping of group names to a list of symbols or to a mapping with keys "
            + ", ".join(GroupMapping.model_fields)
        )
    return value


# --- the groups they make ----------------------------------------------------------------------


def resolve_groups(specs: Mapping[str, Any], universe_file: str) -> tuple[Group, ...]:
    """The groups in the file's order (those of a column in order of first appearance), their
    files read; GroupsError at the first that cannot be had. `universe_file` names the universe
    file in the groups' origins."""
    groups: list[Group] = []
    seen: dict[str, str] = {}
    for key, spec in specs.items():
        loc: Loc = ("groups", key)
        for group, where in _made(key, spec, universe_file):
            if not group.name:
                raise GroupsError("a group name is empty", loc)
            if group.name.upper() == RESERVED:
                raise GroupsError(
                    f"{where}{group.name!r} is reserved: {RESERVED} is the whole universe; name "
                    "the group otherwise",
                    loc,
                )
            first = seen.get(group.name.lower())
            if first is not None:
                raise GroupsError(
                    f"group {group.name!r} is defined twice: by {first} and by {group.origin}", loc
                )
            seen[group.name.lower()] = group.origin
            if not group.tickers:
                raise GroupsError(f"{where}group {group.name!r} has no member", loc)
            groups.append(group)
    return tuple(groups)


def _made(key: str, spec: Any, universe_file: str) -> list[tuple[Group, str]]:
    """The groups that one entry of `groups:` makes, each with where its members come from
    ("file: " or "", to begin a message)."""
    name = key.strip()
    origin = f"{universe_file} groups.{name}"
    if not isinstance(spec, GroupMapping):
        return [(Group(name, tuple(dict.fromkeys(spec)), False, origin), "")]
    if spec.file is None:
        return [(Group(name, tuple(dict.fromkeys(spec.tickers)), spec.chart, origin), "")]
    loc: Loc = ("groups", key)
    lines = _read(spec.file, (*loc, "file"))
    if spec.column is not None:
        made = []
        for header, value, members in _column_groups(spec.file, lines, spec.column, loc):
            column_origin = f"{spec.file.name} column {header}"
            made.append((Group(value, members, spec.chart, column_origin), f"{column_origin}: "))
        return made
    if _ticker_header(next(csv.reader(lines[:1]), [])) is not None:
        members = _csv_members(spec.file, lines, loc)
    else:
        members = _listed(spec.file, lines)
    return [(Group(name, members, spec.chart, origin), f"{spec.file}: ")]


def _read(file: Path, loc: Loc) -> list[str]:
    """The file's lines (a byte-order mark dropped)."""
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise GroupsError(f"{file}: group file not found", loc) from None
    except OSError as error:
        raise GroupsError(f"{file}: cannot read the group file: {error}", loc) from None
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise GroupsError(f"{file} line {line}: not UTF-8 text; save it as UTF-8", None) from None


def _symbol_at(file: Path, number: int, written: str, first: bool) -> str:
    """`written` as a symbol, or refused with the file's line (quoted only after a good one)."""
    symbol = written.upper()
    if symbol_problem(symbol) is None:
        return symbol
    if not first and len(written) <= MAX_SHOWN:
        problem = f"{written!r} is not a valid ticker ({SYMBOL_RULE})"
    else:
        problem = f"not a valid ticker ({SYMBOL_RULE}); is this a list of tickers?"
    raise GroupsError(f"{file} line {number}: {problem}", None)


def _listed(file: Path, lines: list[str]) -> tuple[str, ...]:
    """A list file's symbols: one a line, blank lines and `# comments` left out."""
    members: dict[str, None] = {}
    for number, written in enumerate(lines, start=1):
        written = written.split("#", 1)[0].strip()
        if written:
            members[_symbol_at(file, number, written, not members)] = None
    return tuple(members)


def _ticker_header(headers: list[str]) -> str | None:
    for wanted in TICKER_HEADERS:
        header = find_header(headers, wanted)
        if header is not None:
            return header
    return None


def _rows(file: Path, lines: list[str], loc: Loc) -> tuple[list[str], int, Iterable[tuple]]:
    """The CSV's headers, the index of its ticker column, and (line, row) of each other row."""
    reader = csv.reader(io.StringIO("\n".join(lines)))
    try:
        headers = next(reader, [])
        if not headers:
            problem = "the file is empty" if not lines else "line 1 has no CSV header"
            raise GroupsError(f"{file}: {problem}", (*loc, "file"))
        ticker = _ticker_header(headers)
        if ticker is None:
            listed = ", ".join(repr(header.strip()) for header in headers)
            raise GroupsError(
                f"{file}: no ticker column (a header {' or '.join(TICKER_HEADERS)}, in any "
                f"case); the file's columns are {listed}",
                (*loc, "file"),
            )
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise GroupsError(f"{file} line {reader.line_num}: not CSV: {error}", None) from None
    return headers, headers.index(ticker), rows


def _cell(row: list[str], index: int) -> str:
    return row[index].strip() if index < len(row) else ""


def _csv_members(file: Path, lines: list[str], loc: Loc) -> tuple[str, ...]:
    """The values of a CSV file's ticker column, empty ones left out."""
    _, ticker, rows = _rows(file, lines, loc)
    members: dict[str, None] = {}
    for number, row in rows:
        written = _cell(row, ticker)
        if written:
            members[_symbol_at(file, number, written, not members)] = None
    return tuple(members)


def _column_groups(
    file: Path, lines: list[str], column: str, loc: Loc
) -> list[tuple[str, str, tuple[str, ...]]]:
    """(header, value, members) for each distinct value of `column`, in order of first
    appearance; rows with no value in the column are left out."""
    headers, ticker, rows = _rows(file, lines, loc)
    header = find_header(headers, column)
    if header is None:
        listed = ", ".join(repr(header.strip()) for header in headers)
        raise GroupsError(
            f"{file}: no column {column!r}; the file's columns are {listed}", (*loc, "column")
        )
    at = headers.index(header)
    groups: dict[str, dict[str, None]] = {}
    for number, row in rows:
        value, written = _cell(row, at), _cell(row, ticker)
        if value:
            members = groups.setdefault(value, {})
            if written:
                members[_symbol_at(file, number, written, False)] = None
    if not groups:
        raise GroupsError(f"{file}: no value in column {header.strip()!r}", (*loc, "column"))
    return [(header.strip(), value, tuple(members)) for value, members in groups.items()]
