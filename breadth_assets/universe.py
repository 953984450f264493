"""The universe file: which market, which source, from when, and which tickers.

Read once by the definitions and by the universe sensor; every mistake is refused with the file,
the line and the field, so a typo is fixed before a run starts rather than found in a failed one.

```yaml
market: DEMO            # DEMO, NSE or HOSE
start_date: 2015-01-01  # first date of history, not in the future
batch_size: 50          # tickers per run; optional, default 50, 1..1000
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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from breadth_assets.upstox.history import UpstoxTimeframe as Timeframe
from breadth_assets.upstox.limiter import RateLimits

MARKETS = ("DEMO", "NSE", "HOSE")
SOURCES = ("demo", "csv", "upstox")
CSV_LAYOUTS = ("per_ticker", "long")
CSV_COLUMNS = ("date", "open", "high", "low", "close", "volume", "ticker")

DEFAULT_BATCH_SIZE = 50
MAX_BATCH_SIZE = 1000
ENV_VAR = "BREADTH_UNIVERSE"

_TOP_KEYS = ("market", "start_date", "batch_size", "source", "extra_closures", "tickers")
_REQUIRED_KEYS = ("market", "start_date", "source", "tickers")
_SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "demo": ("kind", "seed"),
    "csv": ("kind", "path", "layout", "file_pattern", "columns", "date_format"),
    "upstox": ("kind", "instruments", "timeframes", "rate_limits", "workers"),
}
_RATE_LIMIT_KEYS = ("per_second", "per_minute", "per_30_minutes")
MAX_UPSTOX_WORKERS = 64
_TICKER_KEYS = ("symbol", "instrument_key")
_SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9&._-]{0,39}$")
_INSTRUMENT_KEY_RE = re.compile(r"^[A-Z]+_[A-Z]+\|[^|\s][^|]*$")
_NULL_TAG = "tag:yaml.org,2002:null"


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
    return _Parser(text, Path(path)).parse()


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Parser:
    """Walks the YAML node tree so that every value keeps the line it came from."""

    def __init__(self, text: str, path: Path) -> None:
        self.text = text
        self.path = path
        self.loader: yaml.SafeLoader | None = None
        self.kind_node: yaml.Node | None = None

    def fail(self, node: yaml.Node | int, field: str, message: str) -> UniverseError:
        line = node if isinstance(node, int) else _line(node)
        where = f"{field}: " if field else ""
        return UniverseError(f"{self.path} line {line}: {where}{message}")

    def parse(self) -> Universe:
        self.loader = yaml.SafeLoader(self.text)
        try:
            root = self.loader.get_single_node()
            return self._universe(root)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            line = mark.line + 1 if mark is not None else 1
            problem = error.problem or error.context or "syntax error"
            raise UniverseError(f"{self.path} line {line}: not valid YAML: {problem}") from None
        except yaml.YAMLError as error:
            raise UniverseError(f"{self.path}: not valid YAML: {error}") from None
        finally:
            self.loader.dispose()

    def value(self, node: yaml.Node) -> Any:
        """The scalar's YAML value, or None when it cannot be built (such as 2015-13-01)."""
        assert self.loader is not None
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError, yaml.constructor.ConstructorError):
            return None

    def mapping(
        self, node: yaml.Node, field: str, allowed: tuple[str, ...]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Key name -> (key node, value node); refuses unknown and repeated keys."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field, f"expected a mapping with keys {', '.join(allowed)}")
        entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            name = f"{field}.{key}" if field else str(key)
            if key not in allowed:
                raise self.fail(
                    key_node, name, f"unknown key; allowed keys are {', '.join(allowed)}"
                )
            if key in entries:
                first = _line(entries[key][0])
                raise self.fail(key_node, name, f"given twice (first on line {first})")
            entries[key] = (key_node, value_node)
        return entries

    def string(self, node: yaml.Node, field: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise self.fail(node, field, "expected a single value, not a list or mapping")
        text = node.value.strip()
        if not text or (node.tag == _NULL_TAG and node.style is None and text in ("~", "null")):
            raise self.fail(node, field, "is empty")
        return text

    def date(self, node: yaml.Node, field: str) -> dt.date:
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = dt.date.fromisoformat(value.strip())
        if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
            shown = node.value if isinstance(node, yaml.ScalarNode) else "a list or mapping"
            raise self.fail(node, field, f"{shown!r} is not a date (write it as YYYY-MM-DD)")
        return value

    def _universe(self, root: yaml.Node | None) -> Universe:
        if root is None:
            raise self.fail(1, "", "the file is empty; expected keys " + ", ".join(_TOP_KEYS))
        if not isinstance(root, yaml.MappingNode):
            raise self.fail(root, "", "expected a mapping with keys " + ", ".join(_TOP_KEYS))
        top = self.mapping(root, "", _TOP_KEYS)
        for key in _REQUIRED_KEYS:
            if key not in top:
                raise self.fail(root, key, "missing (required)")

        market_node = top["market"][1]
        market = self.string(market_node, "market").upper()
        if market not in MARKETS:
            raise self.fail(
                market_node,
                "market",
                f"unknown market {market_node.value!r}; valid markets are {', '.join(MARKETS)}",
            )

        start_node = top["start_date"][1]
        start_date = self.date(start_node, "start_date")
        if start_date > dt.date.today():
            raise self.fail(start_node, "start_date", f"{start_date} is in the future")

        batch_size = DEFAULT_BATCH_SIZE
        if "batch_size" in top:
            batch_size = self._batch_size(top["batch_size"][1])

        source, options = self._source(top["source"][1])
        timeframes = options.pop("timeframes", ())
        if source == "upstox" and market != "NSE":
            raise self.fail(
                self.kind_node, "source.kind", f"upstox serves NSE; the market is {market}"
            )

        closures: tuple[dt.date, ...] = ()
        if "extra_closures" in top:
            closures = self._closures(top["extra_closures"][1])

        tickers = self._tickers(top["tickers"][1])
        if source == "upstox" and "instruments" not in options:
            for index, entry in enumerate(tickers):
                if entry.instrument_key is None:
                    raise self.fail(
                        entry.line,
                        f"tickers[{index}].instrument_key",
                        f"{entry.symbol} has no instrument_key and source.instruments names no "
                        "instruments master file to look it up in",
                    )
        return Universe(
            path=self.path,
            market=market,
            source=source,
            source_options=MappingProxyType(options),
            start_date=start_date,
            batch_size=batch_size,
            extra_closures=closures,
            tickers=tickers,
            timeframes=timeframes,
        )

    def _batch_size(self, node: yaml.Node) -> int:
        value = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 1 <= value <= MAX_BATCH_SIZE
        ):
            shown = node.value if isinstance(node, yaml.ScalarNode) else "a list or mapping"
            raise self.fail(
                node, "batch_size", f"{shown!r} is not a whole number from 1 to {MAX_BATCH_SIZE}"
            )
        return value

    def _closures(self, node: yaml.Node) -> tuple[dt.date, ...]:
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
            return ()
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, "extra_closures", "expected a list of dates")
        days = {self.date(item, f"extra_closures[{i}]") for i, item in enumerate(node.value)}
        return tuple(sorted(days))

    def _source(self, node: yaml.Node) -> tuple[str, dict[str, Any]]:
        if isinstance(node, yaml.ScalarNode):
            entries = {"kind": (node, node)}
        else:
            all_keys = tuple(dict.fromkeys(k for keys in _SOURCE_KEYS.values() for k in keys))
            entries = self.mapping(node, "source", all_keys)
        if "kind" not in entries:
            raise self.fail(node, "source.kind", f"missing; one of {', '.join(SOURCES)}")
        kind_node = entries["kind"][1]
        self.kind_node = kind_node
        kind = self.string(kind_node, "source.kind").lower()
        if kind not in SOURCES:
            raise self.fail(
                kind_node,
                "source.kind",
                f"unknown source {kind_node.value!r}; valid sources are {', '.join(SOURCES)}",
            )
        for key, (key_node, _) in entries.items():
            if key not in _SOURCE_KEYS[kind]:
                raise self.fail(
                    key_node,
                    f"source.{key}",
                    f"not a setting of the {kind} source; "
                    f"allowed keys are {', '.join(_SOURCE_KEYS[kind])}",
                )
        if kind == "demo":
            return kind, self._demo_options(entries)
        if kind == "upstox":
            return kind, self._upstox_options(entries)
        return kind, self._csv_options(node, entries)

    def _relative_path(self, node: yaml.Node, field: str) -> Path:
        raw = Path(self.string(node, field)).expanduser()
        return (raw if raw.is_absolute() else self.path.parent / raw).resolve()

    def _upstox_options(self, entries: dict[str, tuple[yaml.Node, yaml.Node]]) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if "instruments" in entries:
            node = entries["instruments"][1]
            path = self._relative_path(node, "source.instruments")
            if not path.is_file():
                raise self.fail(node, "source.instruments", f"{path}: file not found")
            options["instruments"] = str(path)
        if "timeframes" in entries:
            options["timeframes"] = self._timeframes(entries["timeframes"][1])
        if "rate_limits" in entries:
            options.update(self._rate_limits(entries["rate_limits"][1]))
        if "workers" in entries:
            node = entries["workers"][1]
            workers = self.value(node) if isinstance(node, yaml.ScalarNode) else None
            if (
                not isinstance(workers, int)
                or isinstance(workers, bool)
                or not 1 <= workers <= MAX_UPSTOX_WORKERS
            ):
                raise self.fail(
                    node,
                    "source.workers",
                    f"expected a whole number from 1 to {MAX_UPSTOX_WORKERS}",
                )
            options["workers"] = workers
        return options

    def _timeframes(self, node: yaml.Node) -> tuple[Timeframe, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(
                node, "source.timeframes", "expected a list such as [hours/1, minutes/5]"
            )
        found: dict[Timeframe, None] = {}
        for index, item in enumerate(node.value):
            field = f"source.timeframes[{index}]"
            try:
                timeframe = Timeframe.parse(self.string(item, field))
            except ValueError as error:
                raise self.fail(item, field, str(error)) from None
            if not timeframe.intraday:
                raise self.fail(
                    item, field, f"{timeframe} is not intraday; daily bars are raw_prices"
                )
            found[timeframe] = None
        return tuple(found)

    def _rate_limits(self, node: yaml.Node) -> dict[str, int]:
        entries = self.mapping(node, "source.rate_limits", _RATE_LIMIT_KEYS)
        limits: dict[str, int] = {}
        for key, (_, value_node) in entries.items():
            value = self.value(value_node) if isinstance(value_node, yaml.ScalarNode) else None
            if not isinstance(value, int) or isinstance(value, bool):
                raise self.fail(value_node, f"source.rate_limits.{key}", "expected a whole number")
            try:
                RateLimits(**{key: value})
            except ValueError as error:
                raise self.fail(value_node, f"source.rate_limits.{key}", str(error)) from None
            limits[key] = value
        return limits

    def _demo_options(self, entries: dict[str, tuple[yaml.Node, yaml.Node]]) -> dict[str, Any]:
        if "seed" not in entries:
            return {}
        node = entries["seed"][1]
        seed = self.value(node) if isinstance(node, yaml.ScalarNode) else None
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise self.fail(node, "source.seed", "expected a whole number >= 0")
        return {"seed": seed}

    def _csv_options(
        self, node: yaml.Node, entries: dict[str, tuple[yaml.Node, yaml.Node]]
    ) -> dict[str, Any]:
        if "path" not in entries:
            raise self.fail(node, "source.path", "missing; the csv source needs a file or folder")
        path = self._relative_path(entries["path"][1], "source.path")

        if "layout" in entries:
            layout_node = entries["layout"][1]
            layout = self.string(layout_node, "source.layout").lower()
            if layout not in CSV_LAYOUTS:
                raise self.fail(
                    layout_node,
                    "source.layout",
                    f"unknown layout {layout_node.value!r}; valid layouts are "
                    + ", ".join(CSV_LAYOUTS),
                )
        elif path.is_dir():
            layout = "per_ticker"
        elif path.is_file() or path.suffix:
            layout = "long"
        else:
            layout = "per_ticker"

        options: dict[str, Any] = {"path": str(path), "layout": layout}
        if "file_pattern" in entries:
            pattern_node = entries["file_pattern"][1]
            pattern = self.string(pattern_node, "source.file_pattern")
            try:
                pattern.format(ticker="X")
            except (KeyError, IndexError, ValueError):
                pattern = ""
            if "{ticker}" not in pattern:
                raise self.fail(
                    pattern_node,
                    "source.file_pattern",
                    f"{pattern_node.value!r} must contain {{ticker}} and no other {{...}} field",
                )
            options["file_pattern"] = pattern
        if "columns" in entries:
            options["columns"] = self._csv_columns(entries["columns"][1])
        if "date_format" in entries:
            format_node = entries["date_format"][1]
            date_format = self.string(format_node, "source.date_format")
            if "%" not in date_format:
                raise self.fail(
                    format_node,
                    "source.date_format",
                    f"{date_format!r} is not a strftime format such as %d/%m/%Y",
                )
            options["date_format"] = date_format
        return options

    def _csv_columns(self, node: yaml.Node) -> dict[str, str]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(
                node, "source.columns", "expected a mapping of our column name to the file's header"
            )
        entries = self.mapping(node, "source.columns", CSV_COLUMNS)
        return {
            key: self.string(value_node, f"source.columns.{key}")
            for key, (_, value_node) in entries.items()
        }

    def _tickers(self, node: yaml.Node) -> tuple[TickerEntry, ...]:
        if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
            raise self.fail(node, "tickers", "the ticker list is empty")
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, "tickers", "expected a list of symbols")
        if not node.value:
            raise self.fail(node, "tickers", "the ticker list is empty")
        seen: dict[str, int] = {}
        entries: list[TickerEntry] = []
        for index, item in enumerate(node.value):
            field = f"tickers[{index}]"
            instrument_key = None
            if isinstance(item, yaml.MappingNode):
                keys = self.mapping(item, field, _TICKER_KEYS)
                if "symbol" not in keys:
                    raise self.fail(item, f"{field}.symbol", "missing (required)")
                symbol_node = keys["symbol"][1]
                symbol_field = f"{field}.symbol"
                if "instrument_key" in keys:
                    key_node = keys["instrument_key"][1]
                    instrument_key = self.string(key_node, f"{field}.instrument_key")
                    if not _INSTRUMENT_KEY_RE.match(instrument_key):
                        raise self.fail(
                            key_node,
                            f"{field}.instrument_key",
                            f"{key_node.value.strip()!r} is not an instrument key of the form "
                            "SEGMENT|ID, such as NSE_EQ|INE062A01020",
                        )
            else:
                symbol_node, symbol_field = item, field
            symbol = self.string(symbol_node, symbol_field).upper()
            if symbol_problem(symbol):
                raise self.fail(
                    symbol_node,
                    symbol_field,
                    f"{symbol_node.value.strip()!r} is not a valid ticker ({SYMBOL_RULE})",
                )
            line = _line(symbol_node)
            if symbol in seen:
                raise self.fail(
                    symbol_node,
                    symbol_field,
                    f"duplicate ticker {symbol!r} (lines {seen[symbol]} and {line})",
                )
            seen[symbol] = line
            entries.append(TickerEntry(symbol=symbol, instrument_key=instrument_key, line=line))
        return tuple(entries)


def write_demo_universe(
    folder: Path, symbols: Sequence[str], start: str | dt.date, batch_size: int = DEFAULT_BATCH_SIZE
) -> Path:
    """Writes a demo-market `universe.yaml` into `folder`, for tests, benchmarks and trials."""
    path = Path(folder) / "universe.yaml"
    lines = ["market: DEMO", f"start_date: {str(start)[:10]}", f"batch_size: {batch_size}"]
    lines += ["source:", "  kind: demo", "tickers:", *(f"  - {symbol}" for symbol in symbols)]
    path.write_text("\n".join(lines) + "\n")
    return path
