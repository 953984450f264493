"""Which tickers a universe has: listed in the universe file, in a list file, or all of a source.

`tickers: all` spares listing the hundreds of symbols a source already knows: the files of a csv
folder, the ticker column of a long csv file, the NSE equities of the Upstox instruments master.
`tickers: {file: symbols.txt}` keeps a long hand-made list out of the YAML.

Every run and sensor tick loads the universe again, so what is costly to read (a long csv file,
the instruments master) is kept per process while its modification time and size are unchanged;
a folder listing is cheap and done each time. A file name or value that is not a valid symbol is
skipped and reported, never fatal, so that one odd file does not stop the others; a list file is
written by hand, so its mistakes are refused with its line.
"""

from __future__ import annotations

import glob
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import pandas as pd
from pydantic import BeforeValidator, Discriminator, PlainValidator, Tag

from breadth_assets.fields import (
    Loc,
    SourceSettings,
    Strict,
    a_list,
    is_null,
    relative_path,
    shown,
    text,
)
from breadth_assets.sources.csv.settings import (
    CsvSettings,
    default_layout,
    file_problem,
    find_header,
)
from breadth_assets.sources.upstox.instruments import (
    EQUITY_SEGMENT,
    EQUITY_TYPE,
    InstrumentError,
    equity_keys,
)
from breadth_assets.sources.upstox.settings import UpstoxSettings

_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9&._-]{0,39}$")
_INSTRUMENT_KEY_RE = re.compile(r"^[A-Z]+_[A-Z]+\|[^|\s][^|]*$")
SYMBOL_RULE = (
    "letters, digits, '&', '-', '_' and '.' only, at most 40, starting with a letter or digit"
)
_LONG_CACHE_SIZE = 4
MAX_SHOWN = 40
"""A bad line of a list file is quoted in its error only after a good one and when this short."""
_SKIPPED_SHOWN = 5


def symbol_problem(symbol: str) -> str | None:
    """Why `symbol` cannot be a ticker (it is also a file name and a partition key), or None."""
    if _SYMBOL_RE.match(symbol) and ".." not in symbol:
        return None
    return f"{symbol!r} is not a valid ticker ({SYMBOL_RULE})"


@dataclass(frozen=True)
class TickerEntry:
    """One ticker of the universe: its symbol, the vendor's key when known, where it is named."""

    symbol: str
    instrument_key: str | None = None
    line: int = 0
    """Its line in the universe file, or in the list file; 0 for `tickers: all`."""


class ResolvedTickers(NamedTuple):
    entries: tuple[TickerEntry, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    """(name, reason) of each file name or value of `all` that cannot be a ticker."""


class TickersError(ValueError):
    """The tickers cannot be had: refused at `loc` of the universe file, or, when `loc` is None,
    at the line of a list file that the message names."""

    def __init__(self, message: str, loc: Loc | None = ("tickers",)) -> None:
        super().__init__(message)
        self.message, self.loc = message, loc


# --- the `tickers:` value: a list, `all` or {file: ...} ----------------------------------------


def _symbol(value: Any) -> str:
    symbol = text(value).upper()
    if symbol_problem(symbol):
        raise ValueError(f"{text(value)!r} is not a valid ticker ({SYMBOL_RULE})")
    return symbol


def _instrument_key(value: Any) -> str:
    key = text(value)
    if not _INSTRUMENT_KEY_RE.match(key):
        raise ValueError(
            f"{key!r} is not an instrument key of the form SEGMENT|ID, such as NSE_EQ|INE062A01020"
        )
    return key


class _Ticker(Strict):
    symbol: Annotated[str, PlainValidator(_symbol)]
    instrument_key: Annotated[str | None, PlainValidator(_instrument_key)] = None


def _bare_ticker(value: Any) -> Any:
    """A bare symbol as a `{symbol: ...}` entry, refused as the item itself when invalid."""
    return value if isinstance(value, dict) else {"symbol": _symbol(value)}


def _ticker_list(value: Any) -> list:
    if is_null(value) or value == []:
        raise ValueError("the ticker list is empty")
    return a_list("expected a list of symbols, `all`, or {file: symbols.txt}")(value)


@dataclass(frozen=True)
class AllTickers:
    """`tickers: all`: every ticker the source has."""


class TickerFile(Strict):
    """`tickers: {file: symbols.txt}`: one symbol a line, relative to the universe file's folder."""

    file: Annotated[Path, PlainValidator(relative_path)]


def _form(value: Any) -> str:
    if isinstance(value, dict):
        return "file"
    return "all" if shown(value).strip().lower() == "all" else "list"


TICKER_FORMS = ("list", "all", "file")
"""The tags of `TickerSpec`'s forms, which pydantic puts in an error's place."""
TickerSpec = Annotated[
    Annotated[
        tuple[Annotated[_Ticker, BeforeValidator(_bare_ticker)], ...],
        BeforeValidator(_ticker_list),
        Tag("list"),
    ]
    | Annotated[AllTickers, PlainValidator(lambda _: AllTickers()), Tag("all")]
    | Annotated[TickerFile, Tag("file")],
    Discriminator(_form),
]
"""The `tickers:` field of the universe file as written."""


def resolve_tickers(
    spec: tuple[_Ticker, ...] | AllTickers | TickerFile,
    source: SourceSettings,
    lines: dict[Loc, int],
) -> ResolvedTickers:
    """The universe's tickers, in a stable order: as listed, in the list file's order, or sorted
    for `all`. `lines` are the universe file's lines, for a listed duplicate."""
    if isinstance(spec, AllTickers):
        return all_tickers(source)
    if isinstance(spec, TickerFile):
        return ResolvedTickers(list_file_tickers(spec.file, source))
    entries: list[TickerEntry] = []
    seen: dict[str, int] = {}
    for index, ticker in enumerate(spec):
        loc = ("tickers", index, "symbol")
        line = lines.get(loc) or lines[loc[:2]]
        if ticker.symbol in seen:
            message = f"duplicate ticker {ticker.symbol!r} (lines {seen[ticker.symbol]} and {line})"
            raise TickersError(message, loc if loc in lines else loc[:2])
        seen[ticker.symbol] = line
        entries.append(TickerEntry(ticker.symbol, ticker.instrument_key, line))
    return ResolvedTickers(tuple(entries))


# --- a list file -------------------------------------------------------------------------------


def list_file_tickers(file: Path, source: SourceSettings) -> tuple[TickerEntry, ...]:
    """The symbols of a list file in its order: one a line, blank lines and `# comments` left out.

    Written by hand like the universe file, so an invalid or repeated symbol is refused with its
    line rather than skipped.
    """
    if isinstance(source, UpstoxSettings) and source.instruments is None:
        raise TickersError(
            "the list file's symbols are looked up in source.instruments, which names no "
            "instruments master file",
            ("tickers", "file"),
        )
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise TickersError(f"{file}: list file not found", ("tickers", "file")) from None
    except OSError as error:
        raise TickersError(
            f"{file}: cannot read the list file: {error}", ("tickers", "file")
        ) from None
    try:
        written_lines = data.decode("utf-8-sig").split("\n")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise TickersError(f"{file} line {line}: not UTF-8 text; save it as UTF-8", None) from None
    entries: list[TickerEntry] = []
    seen: dict[str, int] = {}
    for number, written in enumerate(written_lines, start=1):
        written = written.split("#", 1)[0].strip()
        if not written:
            continue
        symbol = written.upper()
        if symbol_problem(symbol) and (entries and len(written) <= MAX_SHOWN):
            problem = f"{written!r} is not a valid ticker ({SYMBOL_RULE})"
        elif symbol_problem(symbol):
            # Before any symbol the file may be anything (a path mistyped in the universe
            # file): its content is not echoed.
            problem = f"not a valid ticker ({SYMBOL_RULE}); is this a list of tickers?"
        elif symbol in seen:
            problem = f"duplicate ticker {symbol!r} (lines {seen[symbol]} and {number})"
        else:
            seen[symbol] = number
            entries.append(TickerEntry(symbol, None, number))
            continue
        raise TickersError(f"{file} line {number}: {problem}", None)
    if not entries:
        raise TickersError(f"{file}: the list file names no symbol", ("tickers", "file"))
    return tuple(entries)


# --- all of a source ---------------------------------------------------------------------------


def all_tickers(source: SourceSettings) -> ResolvedTickers:
    """Every ticker the source has, sorted; what is not a valid symbol is skipped."""
    if isinstance(source, CsvSettings):
        if (source.layout or default_layout(source.path)) == "long":
            return _long_file_tickers(source.path, source.columns.get("ticker"))
        return _folder_tickers(source.path, source.file_pattern)
    if isinstance(source, UpstoxSettings):
        return _master_tickers(source.instruments)
    kind = getattr(source, "kind", "this")
    raise TickersError(
        f"all: the {kind} source has no list of tickers of its own (it makes bars for any "
        "symbol); list the tickers, or name a list file: tickers: {file: symbols.txt}"
    )


def _found(symbols: dict[str, Any], skipped: list[tuple[str, str]], empty: str) -> ResolvedTickers:
    """The sorted symbols (with their instrument key, or None), or `empty` refused."""
    if not symbols:
        shown_skipped = "; ".join(f"{name}: {reason}" for name, reason in skipped[:_SKIPPED_SHOWN])
        more = f" and {len(skipped) - _SKIPPED_SHOWN} more" if len(skipped) > _SKIPPED_SHOWN else ""
        raise TickersError(empty + (f" ({shown_skipped}{more})" if skipped else ""))
    entries = tuple(TickerEntry(symbol, symbols[symbol]) for symbol in sorted(symbols))
    return ResolvedTickers(entries, tuple(sorted(skipped)))


def _folder_tickers(folder: Path, pattern: str) -> ResolvedTickers:
    """The folder's files that `pattern` names, as their symbols, upper-cased."""
    if not folder.is_dir():
        raise TickersError(
            f"{folder}: folder not found (tickers: all lists its files)", ("source", "path")
        )
    parts = pattern.format(ticker="\0").split("\0")
    names = re.compile(
        re.escape(parts[0])
        + "".join(
            ("(?P<ticker>[^/]+)" if at == 0 else "(?P=ticker)") + re.escape(part)
            for at, part in enumerate(parts[1:])
        )
    )
    matched = []
    for name, is_file in _listing(folder, "*".join(glob.escape(part) for part in parts)):
        match = names.fullmatch(name)
        if match is not None and is_file():
            matched.append((match["ticker"], name))
    symbols: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    # A name as the source will ask for it (upper-case) first, so it wins over its other cases.
    for written, name in sorted(matched, key=lambda found: (found[0] != found[0].upper(), found)):
        symbol = written.upper()
        expected = pattern.format(ticker=symbol)
        problem = symbol_problem(symbol)
        if problem is None and symbol in symbols:
            problem = f"the same ticker {symbol} as {symbols[symbol]}"
        elif problem is None and written != symbol and not (folder / expected).is_file():
            problem = f"the source reads {expected} (the symbol upper-cased); rename the file"
        if problem is None:
            symbols[symbol] = name
        else:
            skipped.append((name, problem))
    empty = f"no ticker files matching {pattern!r} in folder {folder}"
    return _found(dict.fromkeys(symbols), skipped, empty)


def _listing(folder: Path, wildcard: str) -> Iterator[tuple[str, Callable[[], bool]]]:
    """The folder's names that `wildcard` may match, and whether each is a file: one scandir
    (no stat per file) when the pattern has no subfolder, else a glob."""
    if "/" not in wildcard:
        with os.scandir(folder) as entries:
            yield from ((entry.name, entry.is_file) for entry in entries)
        return
    for file in folder.glob(wildcard):
        yield file.relative_to(folder).as_posix(), file.is_file


_long_cache: dict[tuple[str, str | None], tuple[tuple[int, int], ResolvedTickers]] = {}
_long_lock = threading.Lock()


def _long_file_tickers(file: Path, mapped: str | None) -> ResolvedTickers:
    """The distinct values of the long file's ticker column, read again only when it changed."""
    try:
        stat = file.stat()
    except OSError as error:
        raise TickersError(f"{file}: {file_problem(error, file)}", ("source", "path")) from None
    key, signature = (str(file), mapped), (stat.st_mtime_ns, stat.st_size)
    with _long_lock:
        cached = _long_cache.get(key)
    if cached is not None and cached[0] == signature:
        return cached[1]
    resolved = _column_tickers(file, mapped)
    with _long_lock:
        _long_cache.pop(key, None)
        while len(_long_cache) >= _LONG_CACHE_SIZE:
            _long_cache.pop(next(iter(_long_cache)))
        _long_cache[key] = (signature, resolved)
    return resolved


def _column_tickers(file: Path, mapped: str | None) -> ResolvedTickers:
    """Reads only the ticker column; its values stripped and upper-cased, as the source does."""
    wanted = mapped or "ticker"
    where: Loc = ("source", "columns", "ticker") if mapped else ("source", "path")
    options: dict[str, Any] = {
        "encoding": "utf-8-sig",
        "encoding_errors": "replace",
        "dtype": str,
        "keep_default_na": False,
    }
    try:
        headers = pd.read_csv(file, nrows=0, **options).columns
        header = find_header(headers, wanted)
        if header is None:
            listed = ", ".join(repr(str(header)) for header in headers)
            raise TickersError(
                f"{file}: no column {wanted!r}; the file's headers are {listed}", where
            )
        column = pd.read_csv(file, usecols=[header], **options)[header]
    except pd.errors.EmptyDataError:
        raise TickersError(f"{file}: the file is empty", ("source", "path")) from None
    except pd.errors.ParserError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "not CSV"
        raise TickersError(f"{file}: cannot be read as CSV: {reason}", ("source", "path")) from None
    except OSError as error:
        raise TickersError(f"{file}: {file_problem(error, file)}", ("source", "path")) from None
    symbols: dict[str, None] = {}
    skipped: list[tuple[str, str]] = []
    for value in pd.unique(column.fillna("").str.strip().str.upper()):
        problem = symbol_problem(value) if value else None
        if problem is not None:
            skipped.append((value, problem))
        elif value:
            symbols[value] = None
    return _found(symbols, skipped, f"{file}: no tickers in column {header!r}")


def _master_tickers(master: Path | None) -> ResolvedTickers:
    """Every NSE equity of the instruments master, with its instrument key."""
    if master is None:
        raise TickersError(
            "all: the upstox source needs source.instruments, the instruments master whose NSE "
            "equities are the universe"
        )
    try:
        keys = equity_keys(master)
    except InstrumentError as error:
        raise TickersError(str(error), ("source", "instruments")) from None
    symbols: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    for symbol, key in keys.items():
        problem = symbol_problem(symbol)
        if problem is None:
            symbols[symbol] = key
        else:
            skipped.append((symbol, problem))
    empty = (
        f"no NSE equity (segment {EQUITY_SEGMENT}, instrument_type {EQUITY_TYPE}) in the "
        f"instruments master {master}"
    )
    return _found(symbols, skipped, empty)
