"""NSE's own corporate-actions export, read into actions of the actions file.

The export is the CSV nseindia.com gives under "Corporate Actions" for equities: a line per action
and series, with SYMBOL, PURPOSE, FACE VALUE and EX-DATE (`13-Dec-2023`, `-` when absent) among
its columns. PURPOSE is free text typed at NSE. The forms read here follow that export as NSE has
written it over the years, typos included ("Face Valus Split", "Fv Splt Frm Rs 10 To Re 1",
"Bonus 1 : 1", "Interim Divdend", "Annual General Meetig"):

- split: "Face Value Split (Sub-Division) - From Rs 10/- Per Share To Re 1/- Per Share" and its
  shorter forms. From F1 to F2, one old share becomes F1/F2 new ones (10 to 2: `1:5`);
- consolidation: "Consolidation Of Equity Shares From Re 1 Per Share To Rs 10 Per Share" (`10:1`);
- bonus: "Bonus 1:2" is 1 new share for every 2 held, `1:2`, in NSE's order;
- dividend: the rupee amounts of the line summed ("Dividend - Rs 8 Per Share/Special Dividend -
  Rs 2 Per Share" is `10`), or a percentage of the FACE VALUE ("Dividend - 50%"). A REIT's or
  InvIT's "Distribution - Rs 5.25 Per Unit Consisting Of ..." is paid out of the unit price like
  a dividend: it is one, of its stated total, and the rest of the line itemises that total.

A parenthesis is dropped before reading ("(Purpose Revised)"), and so is what follows "Including"
in a dividend: a total stated with its parts is counted once. Several purposes in one line
("Bonus 1:1 / Face Value Split ...", "AGM/Dividend - Rs 3 Per Share") give one action per kind.
The dividends of a symbol's ex-date, over all its lines, are one action.

Skipped without a word, as they leave the price where it is: general meetings (AGM, EGM), book
closure, buy-back, e-voting, postal ballot, and the interest payments and redemptions of debt
series. A problem, and its line applies nothing: a purpose that moves the price with no factor in
its text (demerger, rights, scheme of arrangement, capital reduction, amalgamation, a bonus of
debentures or preference shares), a kind without its figures, any purpose not known here, a
malformed EX-DATE, a missing one on a line with an action, and two actions of one kind (other
than dividends) on one symbol's ex-date, which stops that day of the symbol entirely.

Every series is read: an action concerns the company. A line repeated word for word (symbol,
ex-date and purpose) counts once, as the same action listed twice.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

KIND_ORDER: tuple[str, ...] = ("consolidation", "split", "bonus", "dividend")
"""The order of one line's actions in the result."""

_REMEDY = "declare it as a `factor` line in the actions file"
_REQUIRED = ("SYMBOL", "PURPOSE", "EXDATE")
_ABSENT = ("", "-")

_RUPEE = r"(?:\bR[SE](?![A-Z])\.?|\bINR\b|₹)"
_NUMBER = r"(\d{1,3}(?:,\d{2,3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_AMOUNT = re.compile(rf"{_RUPEE}\s*-?\s*{_NUMBER}")
_PERCENT = re.compile(rf"{_NUMBER}\s*%")
_FACE_VALUES = re.compile(rf"{_RUPEE}\s*{_NUMBER}(?!\d).*?\bTO\b\s*(?:{_RUPEE}\s*)?{_NUMBER}")
_FACE_VALUE_NOTE = re.compile(
    rf"(?:\bOF\s+)?{_RUPEE}\s*{_NUMBER}\s*/?-?\s*EACH\b|\b(?:FACE VALUE|FV)\s*(?:OF\s*)?{_RUPEE}"
    rf"\s*{_NUMBER}"
)
_RATIO = re.compile(r"(\d+)\s*:\s*(\d+)")
_DISTRIBUTION = re.compile(rf"\bDISTRIBUTION\s*-?\s*(?:OF\s*)?{_RUPEE}\s*-?\s*{_NUMBER}")
_PARENTHESIS = re.compile(r"\([^()]*\)")
_CLAUSE = re.compile(r"/(?!\s*-)|\s\+\s|&|\bAND\b|;|\n")
_ITEMISED = re.compile(r"\bINCLU(?:DING|SIVE)\b.*")

_KINDS = {
    "consolidation": re.compile(r"CONSOLIDAT"),
    "split": re.compile(r"\b(?:SPLIT|SPLT|SUB-?DIVISION)\b"),
    "bonus": re.compile(r"\bBONUS"),
    "dividend": re.compile(r"\bDIV(?!IS|IDED\b)"),
}
_MOVES = (
    (re.compile(r"DE-?MERGER|SPIN[- ]?OFF"), "a demerger"),
    (re.compile(r"\bRIGHTS?\b"), "a rights issue"),
    (re.compile(r"\bSCHEME\b"), "a scheme of arrangement"),
    (
        re.compile(r"CAPITAL REDUCTION|REDUCTION (?:OF|IN) (?:SHARE )?CAPITAL|RETURN OF CAPITAL"),
        "a capital reduction",
    ),
    (re.compile(r"AMALGAMATION|MERGER"), "an amalgamation"),
)
_NOT_EQUITY = re.compile(r"\b(?:DEB\w*|PREF\w*|N?C?RPS|DVRS?|N?CCDS?|NCDS?|WARRANTS?|BONDS?)\b")
_NEUTRAL = re.compile(
    r"\b(?:AGM|EGM|MEET\w*|BOOK CLOSURE|BUY\s*-?\s*BACK\w*|INTEREST|REDEMPTION|E-?VOTING"
    r"|POSTAL BALLOT)\b"
)


@dataclass(frozen=True)
class NseAction:
    """One action of the export in the actions file's terms: `kind` and its `value`."""

    ticker: str
    ex_date: dt.date
    kind: str
    value: str
    line: int


@dataclass(frozen=True)
class _Line:
    number: int
    ticker: str
    purpose: str
    ex_date: dt.date
    parts: tuple[tuple[str, str], ...]


class _Unreadable(ValueError):
    """Why a line gives no action that can be trusted."""


def is_nse_export(header: list[str]) -> bool:
    """Whether a CSV header is NSE's corporate-actions export, whatever its case, spaces, quotes
    or byte-order mark: it names SYMBOL, PURPOSE and EX-DATE."""
    return set(_REQUIRED) <= set(_columns(header))


def parse_nse_actions(text: str, name: str) -> tuple[list[NseAction], list[str]]:
    """The actions of NSE's export `text`, by line then `KIND_ORDER`, and its problems, one line
    each, naming the file `name` and the line, so each is fixed in the actions file."""
    records = _records(text.lstrip("\ufeff"))
    first = next(records, None)
    if first is None or not is_nse_export(first[1]):
        header = "SYMBOL, PURPOSE and EX-DATE"
        return [], [
            f"{name} line 1: not NSE's corporate-actions export (no {header} in its header)"
        ]
    columns = _columns(first[1])
    lines: list[_Line] = []
    problems: list[str] = []
    for number, cells in records:
        read = _read_line(number, {key: _cell(cells, i) for key, i in columns.items()}, name)
        if isinstance(read, str):
            problems.append(read)
        elif read is not None:
            lines.append(read)
    actions: list[NseAction] = []
    for day in _by_day(_unique(lines)):
        merged, trouble = _merge(day, name)
        actions += merged
        problems += trouble
    actions.sort(key=lambda action: (action.line, KIND_ORDER.index(action.kind)))
    return actions, problems


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """The CSV records with the line each starts on; a quoted PURPOSE may span lines."""
    reader = csv.reader(io.StringIO(text))
    end = 0
    for cells in reader:
        yield end + 1, cells
        end = reader.line_num


def _columns(header: Sequence[str]) -> dict[str, int]:
    """Each column's index by its name in capitals and digits only: `EX-DATE` is `EXDATE`."""
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = re.sub(r"[^A-Z0-9]", "", cell.upper())
        found.setdefault("FACEVALUE" if key.startswith("FACEVALUE") else key, index)
    return found


def _cell(cells: Sequence[str], index: int) -> str:
    return cells[index].strip().strip("\"'").strip() if index < len(cells) else ""


def _read_line(number: int, cells: dict[str, str], name: str) -> _Line | str | None:
    """The line's actions, its problem, or None when it has nothing to apply."""
    ticker, purpose = cells["SYMBOL"].upper(), cells["PURPOSE"]
    if not ticker and not purpose:
        return None
    try:
        parts = _read_purpose(purpose, cells.get("FACEVALUE", ""))
        ex_date = _ex_date(cells["EXDATE"], needed=bool(parts))
        if parts and not ticker:
            raise _Unreadable("no SYMBOL")
    except _Unreadable as error:
        return f"{name} line {number}: {ticker} {purpose!r}: {error}; {_remedy(ticker, cells)}"
    if not parts or ex_date is None:
        return None
    return _Line(number, ticker, purpose, ex_date, parts)


def _remedy(ticker: str, cells: dict[str, str]) -> str:
    """What to declare, with the line it takes when the EX-DATE is readable (a declared
    `factor` line for that ticker and day then silences the problem)."""
    try:
        day = _ex_date(cells["EXDATE"], needed=False)
    except _Unreadable:
        day = None
    if day is None or not ticker:
        return _REMEDY
    return f"{_REMEDY} ({ticker},{day.isoformat()},factor,F)"


def _ex_date(text: str, needed: bool) -> dt.date | None:
    if text in _ABSENT:
        if needed:
            raise _Unreadable("no EX-DATE")
        return None
    try:
        return dt.datetime.strptime(text, "%d-%b-%Y").date()
    except ValueError:
        raise _Unreadable(f"EX-DATE {text!r} is not a date like 13-Dec-2023") from None


def _read_purpose(purpose: str, face_value: str) -> tuple[tuple[str, str], ...]:
    """A PURPOSE's actions as (kind, value), at most one per kind; `_Unreadable` when a part of
    it moves the price in a way that cannot be read."""
    text = purpose.upper().replace("\r", "\n")
    while _PARENTHESIS.search(text):
        text = _PARENTHESIS.sub(" ", text)
    parts: list[tuple[str, str]] = []
    distribution = _DISTRIBUTION.search(text)
    if distribution:
        parts.append(("dividend", _plain(_decimal(distribution.group(1)))))
        text = text[: distribution.start()]
    for clause in _CLAUSE.split(text):
        parts += _read_clause(" ".join(clause.split()), face_value)
    return _combine(parts)


def _read_clause(clause: str, face_value: str) -> list[tuple[str, str]]:
    for pattern, what in _MOVES:
        if pattern.search(clause):
            raise _Unreadable(f"{what} has no price factor in its text")
    segments = _segments(clause)
    if segments:
        return [(kind, _READERS[kind](text, face_value)) for kind, text in segments]
    if _NEUTRAL.search(clause) or not clause.strip(" -.,:"):
        return []
    raise _Unreadable("not a purpose this reader knows")


def _segments(clause: str) -> list[tuple[str, str]]:
    """The clause cut where each kind is first named: "Bonus 1:1 Face Value Split From Rs 10 To
    Rs 5" is a bonus, then a split; the words before the first kind go with it."""
    starts = sorted(
        (found.start(), kind) for kind, p in _KINDS.items() if (found := p.search(clause))
    )
    cuts = [0, *(start for start, _ in starts[1:]), len(clause)]
    return [(kind, clause[cuts[i] : cuts[i + 1]]) for i, (_, kind) in enumerate(starts)]


def _combine(parts: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """One line's parts with its dividends summed; two of another kind cannot be told apart."""
    others = [(kind, value) for kind, value in parts if kind != "dividend"]
    kinds = [kind for kind, _ in others]
    for kind in kinds:
        if kinds.count(kind) > 1:
            raise _Unreadable(f"two {kind} actions in one purpose")
    dividends = [_decimal(value) for kind, value in parts if kind == "dividend"]
    if dividends:
        others.append(("dividend", _plain(sum(dividends, Decimal(0)))))
    return tuple(others)


def _face_value_ratio(text: str, kind: str) -> tuple[Fraction, Fraction]:
    found = _FACE_VALUES.search(text)
    if not found:
        raise _Unreadable(f"a {kind} without its face values from and to")
    old, new = Fraction(_decimal(found.group(1))), Fraction(_decimal(found.group(2)))
    if not old or not new:
        raise _Unreadable(f"a {kind} to or from a face value of 0")
    return old, new


def _shares(old: Fraction, new: Fraction) -> str:
    """`a:b`, a old shares becoming b: from face value `old` to `new`, one share becomes
    old/new."""
    ratio = old / new
    return f"{ratio.denominator}:{ratio.numerator}"


def _split(text: str, _face_value: str) -> str:
    old, new = _face_value_ratio(text, "split")
    if new >= old:
        raise _Unreadable(f"a split from Rs {old} to Rs {new} gives no more shares")
    return _shares(old, new)


def _consolidation(text: str, _face_value: str) -> str:
    old, new = _face_value_ratio(text, "consolidation")
    if new <= old:
        raise _Unreadable(f"a consolidation from Rs {old} to Rs {new} gives no fewer shares")
    return _shares(old, new)


def _bonus(text: str, _face_value: str) -> str:
    if _NOT_EQUITY.search(text):
        raise _Unreadable(
            "a bonus of debentures or preference shares has no price factor in its text"
        )
    found = _RATIO.search(text)
    if not found or not int(found.group(1)) or not int(found.group(2)):
        raise _Unreadable("a bonus without its ratio a:b")
    return f"{int(found.group(1))}:{int(found.group(2))}"


def _dividend(text: str, face_value: str) -> str:
    text = _FACE_VALUE_NOTE.sub(" ", _ITEMISED.sub("", text))
    amounts = [_decimal(number) for number in _AMOUNT.findall(text)]
    if not amounts:
        amounts = [_of_face_value(number, face_value) for number in _PERCENT.findall(text)]
    total = sum(amounts, Decimal(0))
    if total <= 0:
        raise _Unreadable("a dividend without its amount per share")
    return _plain(total)


def _of_face_value(percent: str, face_value: str) -> Decimal:
    if not re.fullmatch(r"\d+(?:\.\d+)?", face_value) or not Decimal(face_value):
        raise _Unreadable(f"a dividend of {percent}% of a FACE VALUE the line does not give")
    return Decimal(face_value) * _decimal(percent) / 100


_READERS: dict[str, Callable[[str, str], str]] = {
    "consolidation": _consolidation,
    "split": _split,
    "bonus": _bonus,
    "dividend": _dividend,
}


def _decimal(number: str) -> Decimal:
    return Decimal(number.replace(",", ""))


def _plain(amount: Decimal) -> str:
    """An amount as plain decimal text with no needless zeros: 2.50 is `2.5`, 10.00 is `10`."""
    return format(amount.normalize(), "f")


def _unique(lines: list[_Line]) -> list[_Line]:
    seen: set[tuple[str, dt.date, str]] = set()
    kept = []
    for line in lines:
        key = (line.ticker, line.ex_date, " ".join(line.purpose.upper().split()))
        if key not in seen:
            seen.add(key)
            kept.append(line)
    return kept


def _by_day(lines: list[_Line]) -> list[list[_Line]]:
    days: dict[tuple[str, dt.date], list[_Line]] = {}
    for line in lines:
        days.setdefault((line.ticker, line.ex_date), []).append(line)
    return list(days.values())


def _merge(day: list[_Line], name: str) -> tuple[list[NseAction], list[str]]:
    """The actions of one symbol's ex-date: its dividends summed into one, on the line of the
    first; two of another kind are a problem that applies nothing of the day."""
    first: dict[str, tuple[_Line, str]] = {}
    dividends: list[tuple[_Line, str]] = []
    for line in day:
        for kind, value in line.parts:
            if kind == "dividend":
                dividends.append((line, value))
            elif kind in first:
                return [], [_twice(name, first[kind][0], line, kind)]
            else:
                first[kind] = (line, value)
    if dividends:
        total = sum((_decimal(value) for _, value in dividends), Decimal(0))
        first["dividend"] = (dividends[0][0], _plain(total))
    return [
        NseAction(line.ticker, line.ex_date, kind, value, line.number)
        for kind, (line, value) in first.items()
    ], []


def _twice(name: str, one: _Line, other: _Line, kind: str) -> str:
    return (
        f"{name} lines {one.number} and {other.number}: {one.ticker} {one.purpose!r} and"
        f" {other.purpose!r}: two {kind} actions on {one.ex_date.isoformat()}; {_REMEDY}"
    )
