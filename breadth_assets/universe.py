"""The universe file: which market, which source, from when, and which tickers.

Read once by the definitions and by the universe sensor; every mistake is refused with the file,
the line and the field, so a typo is fixed before a run starts rather than found in a failed one.

```yaml
market: DEMO            # DEMO, NSE or HOSE
start_date: 2015-01-01  # first date of history, not in the future
batch_size: 50          # tickers per run; optional, default 50, 1..1000
update_batch_size: 2000 # tickers per run of an update; optional, default 2000, 1..5000
source:
  kind: demo            # demo (optional: seed: 0) | csv | upstox
  # csv only:
  # path: prices/             # a folder of per-ticker files, or one long file with a ticker column
  # layout: per_ticker        # per_ticker (default for a folder) | long (default for a file)
  # file_pattern: "{ticker}.csv"
  # columns: {date: Date, close: Close, ticker: Symbol}  # our name -> the file's header
  # date_format: "%d/%m/%Y"   # optional, else ISO dates
  # upstox only (market NSE; token from $UPSTOX_ACCESS_TOKEN):
  # instruments: NSE.json.gz  # master file to look up symbols without an instrument_key
  # timeframes: [hours/1, minutes/5]   # optional intraday candles, into intraday_prices
  # rate_limits: {per_second: 50, per_minute: 500, per_30_minutes: 2000}  # lower only
  # workers: 16               # requests in flight per run
extra_closures: [2025-04-30]  # optional, closed days beyond the holiday calendar (HOSE)
tickers:
  - AAA                       # a bare symbol, or
  - symbol: SBIN
    instrument_key: "NSE_EQ|INE062A01020"   # optional
```

Symbols are taken as written (so `ON` or `007` stay strings, never YAML booleans or numbers),
stripped and upper-cased. Relative csv paths are resolved against the universe file's folder.
The full reference is docs/universe.md.

The YAML is read once into values that remember their lines (`breadth_assets.settings`), then
validated by pydantic models: the `source:` block by the settings model of its kind, defined next
to that source's resource. Pydantic's first error is put back on the file's line and field.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, Field, PlainValidator, ValidationError
from pydantic_core import ErrorDetails

from breadth_assets.resources.csv_settings import CsvSettings
from breadth_assets.resources.demo_settings import DemoSettings
from breadth_assets.resources.upstox_settings import UpstoxSettings
from breadth_assets.settings import (
    Loc,
    SourceSettings,
    Strict,
    TreeError,
    a_list,
    is_null,
    read_tree,
    refusal,
    shown,
    text,
    typed,
)
from breadth_assets.timeframes import Timeframe

MARKETS = ("DEMO", "NSE", "HOSE")
SOURCES: dict[str, type[SourceSettings]] = {
    "demo": DemoSettings,
    "csv": CsvSettings,
    "upstox": UpstoxSettings,
}
"""Each `source.kind` and the model of its settings, defined next to its resource."""
_ALL_SOURCE_KEYS = tuple(
    dict.fromkeys(key for model in SOURCES.values() for key in model.model_fields)
)

DEFAULT_BATCH_SIZE = 50
MAX_BATCH_SIZE = 1000
DEFAULT_UPDATE_BATCH_SIZE = 2000
MAX_UPDATE_BATCH_SIZE = 5000
ENV_VAR = "BREADTH_UNIVERSE"

_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9&._-]{0,39}$")
_INSTRUMENT_KEY_RE = re.compile(r"^[A-Z]+_[A-Z]+\|[^|\s][^|]*$")


class UniverseError(ValueError):
    """The universe file cannot be used; the message names the file, the line and the field."""


@dataclass(frozen=True)
class TickerEntry:
    symbol: str
    instrument_key: str | None = None
    line: int = 0


@dataclass(frozen=True)
class Universe:
    path: Path
    market: str
    source: str
    source_options: Mapping[str, Any]
    start_date: dt.date
    batch_size: int
    extra_closures: tuple[dt.date, ...]
    tickers: tuple[TickerEntry, ...]
    timeframes: tuple[Timeframe, ...] = ()
    """Intraday candle sizes to keep in `intraday_prices` (Upstox only)."""
    update_batch_size: int = DEFAULT_UPDATE_BATCH_SIZE
    """Tickers per run when they already have history: an update reads a few bars per ticker."""
    end_date: dt.date | None = None

    @property
    def symbols(self) -> list[str]:
        return [entry.symbol for entry in self.tickers]


SYMBOL_RULE = (
    "letters, digits, '&', '-', '_' and '.' only, at most 40, starting with a letter or digit"
)


def symbol_problem(symbol: str) -> str | None:
    """Why `symbol` cannot be a ticker (it is also a file name and a partition key), or None."""
    if _SYMBOL_RE.match(symbol) and ".." not in symbol:
        return None
    return f"{symbol!r} is not a valid ticker ({SYMBOL_RULE})"


def partition_key_problems(keys: Sequence[str], universe: Universe) -> dict[str, str]:
    """Ticker partition keys that no source may see: not a valid symbol, or not in the universe.

    Partitions can be added from the UI or the instance API, bypassing the universe file.
    """
    listed = set(universe.symbols)
    problems = {}
    for key in keys:
        problem = symbol_problem(key)
        if problem is None and key not in listed:
            problem = (
                f"{key!r} is not in the universe file {universe.path}; add it there, or delete "
                "the partition"
            )
        if problem is not None:
            problems[key] = f"partition {problem}"
    return problems


def default_universe_path() -> Path:
    """`$BREADTH_UNIVERSE` when set, else universe.yaml at the project root."""
    override = os.environ.get(ENV_VAR, "").strip()
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parents[1] / "universe.yaml"


def load_universe(path: str | Path | None = None) -> Universe:
    path = Path(path) if path is not None else default_universe_path()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UniverseError(f"{path}: universe file not found") from None
    except OSError as error:
        raise UniverseError(f"{path}: cannot read the universe file: {error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise UniverseError(
            f"{path} line {line}: not UTF-8 text (byte 0x{data[error.start]:02x} at column "
            f"{column}); save the file as UTF-8"
        ) from None
    return parse_universe(text, path)


def parse_universe(text: str, path: Path) -> Universe:
    """The universe `text` (the file at `path`) describes; UniverseError naming the file, the
    line and the field of its first mistake."""
    path = Path(path)
    try:
        tree = read_tree(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = error.problem or error.context or "syntax error"
        raise UniverseError(f"{path} line {line}: not valid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise UniverseError(f"{path}: not valid YAML: {error}") from None
    except TreeError as error:
        where = f"{path} line {error.line}: {_field(error.loc)}"
        raise UniverseError(f"{where}: {error.message}") from None
    if tree is None:
        keys = ", ".join(_UniverseFile.model_fields)
        raise UniverseError(f"{path} line 1: the file is empty; expected keys {keys}")

    def refuse(loc: Loc, message: str, at_key: bool = False) -> UniverseError:
        """The refusal at `loc`: the line of its key, or of the nearest value the file has."""
        line = tree.key_lines.get(loc) if at_key else None
        up = loc
        while line is None:
            line, up = tree.lines.get(up), up[:-1]
        where = f"{_field(loc)}: " if loc else ""
        return UniverseError(f"{path} line {line}: {where}{message}")

    try:
        model = _UniverseFile.model_validate(tree.data, context={"folder": path.parent})
    except ValidationError as errors:
        raise _refusal(errors.errors()[0], refuse) from None
    return _universe(model, path, tree.lines, refuse)


def _field(loc: Loc) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:]


def _refusal(error: ErrorDetails, refuse: Callable[..., UniverseError]) -> UniverseError:
    """A pydantic error as the file's refusal (the source's kind is no part of its place)."""
    loc = tuple(error["loc"])
    if loc[:1] == ("source",) and len(loc) > 1 and loc[1] in SOURCES:
        loc = loc[:1] + loc[2:]
    ctx = error.get("ctx") or {}
    if error["type"] == "universe":
        key = ctx.get("key")
        return refuse((*loc, key) if key else loc, ctx["message"], at_key=key is not None)
    if error["type"] == "missing":
        return refuse(loc, "missing (required)")
    if error["type"] == "value_error":
        return refuse(loc, str(ctx["error"]))
    return refuse(loc, error["msg"])


def _universe(
    model: _UniverseFile, path: Path, lines: dict[Loc, int], refuse: Callable[..., UniverseError]
) -> Universe:
    entries: list[TickerEntry] = []
    seen: dict[str, int] = {}
    for index, ticker in enumerate(model.tickers):
        loc = ("tickers", index, "symbol")
        line = lines.get(loc) or lines[loc[:2]]
        if ticker.symbol in seen:
            message = f"duplicate ticker {ticker.symbol!r} (lines {seen[ticker.symbol]} and {line})"
            raise refuse(loc if loc in lines else loc[:2], message)
        seen[ticker.symbol] = line
        entries.append(TickerEntry(ticker.symbol, ticker.instrument_key, line))
    keys = [(entry.symbol, entry.instrument_key) for entry in entries]
    problem = model.source.universe_refusal(model.market, keys)
    if problem is not None:
        raise refuse(*problem)
    return Universe(
        path=path,
        market=model.market,
        source=model.source.kind,
        source_options=MappingProxyType(model.source.resource_options()),
        start_date=model.start_date,
        batch_size=model.batch_size,
        extra_closures=tuple(sorted(set(model.extra_closures))),
        tickers=tuple(entries),
        timeframes=model.source.timeframe_list(),
        update_batch_size=model.update_batch_size,
    )


def _market(value: Any) -> str:
    market = text(value).upper()
    if market not in MARKETS:
        raise ValueError(f"unknown market {shown(value)!r}; valid markets are {', '.join(MARKETS)}")
    return market


def _date(value: Any) -> dt.date:
    day = typed(value)
    if isinstance(day, str):
        with contextlib.suppress(ValueError):
            day = dt.date.fromisoformat(day.strip())
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise ValueError(f"{shown(value)!r} is not a date (write it as YYYY-MM-DD)")
    return day


def _start_date(value: Any) -> dt.date:
    day = _date(value)
    if day > dt.date.today():
        raise ValueError(f"{day} is in the future")
    return day


def _whole_number_up_to(most: int):
    def check(value: Any) -> int:
        size = typed(value)
        if type(size) is not int or not 1 <= size <= most:
            raise ValueError(f"{shown(value)!r} is not a whole number from 1 to {most}")
        return size

    return check


_batch_size = _whole_number_up_to(MAX_BATCH_SIZE)
_update_batch_size = _whole_number_up_to(MAX_UPDATE_BATCH_SIZE)


def _source(value: Any) -> dict[str, Any]:
    """The block as a mapping with a known, lower-case kind and only that kind's keys."""
    block = {"kind": value} if not isinstance(value, dict | list) else value
    if not isinstance(block, dict):
        raise refusal("expected a mapping with keys " + ", ".join(_ALL_SOURCE_KEYS))
    if "kind" not in block:
        raise refusal(f"missing; one of {', '.join(SOURCES)}", "kind")
    try:
        kind = text(block["kind"]).lower()
    except ValueError as error:
        raise refusal(str(error), "kind") from None
    if kind not in SOURCES:
        raise refusal(
            f"unknown source {shown(block['kind'])!r}; valid sources are {', '.join(SOURCES)}",
            "kind",
        )
    allowed = SOURCES[kind].model_fields
    for key in block:
        if key in _ALL_SOURCE_KEYS and key not in allowed:
            raise refusal(
                f"not a setting of the {kind} source; allowed keys are {', '.join(allowed)}", key
            )
        if key not in allowed:
            raise refusal(f"unknown key; allowed keys are {', '.join(_ALL_SOURCE_KEYS)}", key)
    return {**block, "kind": kind}


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


def _closures(value: Any) -> list:
    return [] if is_null(value) else a_list("expected a list of dates")(value)


def _tickers(value: Any) -> list:
    if is_null(value) or value == []:
        raise ValueError("the ticker list is empty")
    return a_list("expected a list of symbols")(value)


class _UniverseFile(Strict):
    market: Annotated[str, PlainValidator(_market)]
    start_date: Annotated[dt.date, PlainValidator(_start_date)]
    batch_size: Annotated[int, PlainValidator(_batch_size)] = DEFAULT_BATCH_SIZE
    update_batch_size: Annotated[int, PlainValidator(_update_batch_size)] = (
        DEFAULT_UPDATE_BATCH_SIZE
    )
    source: Annotated[
        DemoSettings | CsvSettings | UpstoxSettings,
        Field(discriminator="kind"),
        BeforeValidator(_source),
    ]
    extra_closures: Annotated[
        tuple[Annotated[dt.date, PlainValidator(_date)], ...],
        BeforeValidator(_closures),
    ] = ()
    tickers: Annotated[
        tuple[Annotated[_Ticker, BeforeValidator(_bare_ticker)], ...], BeforeValidator(_tickers)
    ]
