"""The universe file: which market, which source, from when, and which tickers.

Read once by the definitions and by the universe sensor; every mistake is refused with the file,
the line and the field, so a typo is fixed before a run starts rather than found in a failed one.

```yaml
market: DEMO            # DEMO, HOSE or a pandas_market_calendars name: NSE, XNYS, XLON, ...
start_date: 2015-01-01  # first date of history, not in the future
end_date: 2024-06-28    # optional: the history ends there (breadth, fetches, the schedule)
timezone: Asia/Kolkata  # optional: the market's time zone (default: its calendar's)
update_time: "18:00"    # optional: when a day's bars are final, local time (default: 2 h after
                        # the close)
batch_size: 50          # tickers per run; optional, default 50, 1..1000
update_batch_size: 2000 # tickers per run of an update; optional, default 2000, 1..5000
source:
  kind: demo            # demo | csv | upstox, with its settings (docs/universe.md)
extra_closures: [2025-04-30]  # optional, closed days beyond the holiday calendar (HOSE)
extra_sessions: [2024-11-01]  # optional, days traded although the calendar says closed
actions: actions.csv          # optional: splits, bonuses, ... (a file or a folder of them)
adjust_dividends: false       # optional: dividends adjust prices too (default false)
max_daily_move: 20%           # optional: the largest plausible move (default: the market's)
min_coverage: 80%             # optional: share of a group's tickers with a bar for its day's
                              # percentages (default 80%; also 0.8 or 80)
groups:                       # optional: breadth for each group too, besides the whole (ALL)
  NIFTY50: [RELIANCE, TCS]    # a list of symbols, or
  Banks: {file: banks.txt, chart: true}   # a list file (or a CSV with a Symbol column), or
  sectors: {file: ind_nifty500list.csv, column: Industry}   # a group per value of the column
signals:                      # optional: which breadth signals, and their thresholds
  enabled: [zweig_thrust, mcclellan_cross_up]   # default all; or none
  # summation_levels: [-1000, 0, 1000]   new_lows_share: 10%   sma200_level: 50
  # hindenburg_share: 2.2%    (the defaults)
tickers:
  - AAA                       # a bare symbol, or
  - symbol: SBIN
    instrument_key: "NSE_EQ|INE062A01020"   # optional
# or every ticker of the source (csv files, a long file's ticker column, Upstox NSE equities):
# tickers: all
# or a list file, one symbol a line, relative to this file:  tickers: {file: symbols.txt}
```

Symbols are taken as written (so `ON` or `007` stay strings, never YAML booleans or numbers),
stripped and upper-cased. Relative csv paths are resolved against the universe file's folder.
The full reference is docs/universe.md; the tickers are resolved in `universe_tickers`, the
groups' files read in `breadth_assets.universe.groups`, the `signals:` block read in
`breadth_assets.universe.signals`.

The YAML is read once into values that remember their lines (`breadth_assets.fields`), then
validated by pydantic models: the `source:` block by the settings model of its kind, defined next
to that source's resource. Pydantic's first error is put back on the file's line and field.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, Field, PlainValidator, ValidationError
from pydantic_core import ErrorDetails

from breadth_assets.analytics.breadth import DEFAULT_MIN_COVERAGE
from breadth_assets.analytics.signals import SignalSettings
from breadth_assets.calendars import Calendar, calendar
from breadth_assets.fields import (
    Loc,
    SourceSettings,
    Strict,
    TreeError,
    read_tree,
    refusal,
    shown,
    text,
)
from breadth_assets.sources.csv.settings import CsvSettings
from breadth_assets.sources.demo.settings import DemoSettings
from breadth_assets.sources.timeframes import Timeframe
from breadth_assets.sources.upstox.settings import UpstoxSettings
from breadth_assets.universe import fields
from breadth_assets.universe.fields import DEFAULT_BATCH_SIZE, DEFAULT_UPDATE_BATCH_SIZE
from breadth_assets.universe.groups import (
    GROUP_FORMS,
    Group,
    GroupsError,
    GroupSpec,
    chart_groups,
    group_mapping,
    resolve_groups,
)
from breadth_assets.universe.signals import SignalsBlock, signals_block
from breadth_assets.universe.tickers import (
    TICKER_FORMS,
    TickerEntry,
    TickersError,
    TickerSpec,
    resolve_tickers,
    symbol_problem,
)

SOURCES: dict[str, type[SourceSettings]] = {
    "demo": DemoSettings,
    "csv": CsvSettings,
    "upstox": UpstoxSettings,
}
"""Each `source.kind` and the model of its settings, defined next to its resource."""
_ALL_SOURCE_KEYS = tuple(
    dict.fromkeys(key for model in SOURCES.values() for key in model.model_fields)
)

ENV_VAR = "BREADTH_UNIVERSE"


class UniverseError(ValueError):
    """The universe file cannot be used; the message names the file, the line and the field."""


@dataclass(frozen=True)
class Universe:
    path: Path
    market: str
    source: str
    source_settings: SourceSettings
    """The `source:` block as validated: what the source's resource is built with each run."""
    start_date: dt.date
    batch_size: int
    extra_closures: tuple[dt.date, ...]
    tickers: tuple[TickerEntry, ...]
    timeframes: tuple[Timeframe, ...] = ()
    """Intraday candle sizes to keep in `intraday_prices` (Upstox only)."""
    update_batch_size: int = DEFAULT_UPDATE_BATCH_SIZE
    """Tickers per run when they already have history: an update reads a few bars per ticker."""
    end_date: dt.date | None = None
    """The last day of a finished history: nothing is fetched or computed after it."""
    timezone: str | None = None
    update_time: dt.time | None = None
    """Overrides of the market's time zone and update time (None: the calendar's)."""
    skipped: tuple[tuple[str, str], ...] = ()
    """(name, reason) of each file or value of `tickers: all` that cannot be a ticker."""
    actions: Path | None = None
    """The corporate actions file, or a folder of them (docs/universe.md)."""
    adjust_dividends: bool = False
    max_daily_move: float = fields.DEFAULT_DAILY_MOVE
    """The largest close-to-close move the `unexplained_moves` check lets pass."""
    groups: tuple[Group, ...] = ()
    """The groups breadth is computed for besides the whole universe, in the file's order."""
    min_coverage: float = DEFAULT_MIN_COVERAGE
    """The share of a group's tickers that must have a bar for its day's percentages."""
    extra_sessions: tuple[dt.date, ...] = ()
    """Days the market trades although its calendar says closed, sorted."""
    signals: SignalSettings = field(default_factory=SignalSettings)
    """Which breadth signals are on and their thresholds (`signals:`)."""

    @property
    def symbols(self) -> list[str]:
        return [entry.symbol for entry in self.tickers]

    @property
    def chart_groups(self) -> tuple[str, ...]:
        """The groups marked `chart: true`, or, when none is, the first three."""
        return chart_groups(self.groups)

    @property
    def calendar(self) -> Calendar:
        return calendar(self.market, self.extra_closures, self.timezone, self.update_time)

    def last_day(self, now: dt.datetime | None = None) -> dt.date:
        """The last day to fetch and compute: the last closed day, or `end_date` when earlier."""
        day = self.calendar.last_closed_day(now)
        if self.end_date is not None and self.end_date < day:
            recent = max(self.start_date, self.end_date - dt.timedelta(days=30))
            ended = self.calendar.trading_days(recent, self.end_date)
            return ended[-1].date() if len(ended) else self.start_date
        return day


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
    return Path(__file__).resolve().parents[2] / "universe.yaml"


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
    if loc[:1] == ("tickers",) and len(loc) > 1 and loc[1] in TICKER_FORMS:
        loc = loc[:1] + loc[2:]  # nor the form of the tickers
    if loc[:1] == ("groups",) and len(loc) > 2 and loc[2] in GROUP_FORMS:
        loc = loc[:2] + loc[3:]  # nor that of a group
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
    try:
        entries, skipped = resolve_tickers(model.tickers, model.source, lines)
    except TickersError as error:
        if error.loc is None:
            raise UniverseError(error.message) from None
        raise refuse(error.loc, error.message) from None
    if model.end_date is not None and model.end_date < model.start_date:
        raise refuse(("end_date",), f"{model.end_date} is before start_date {model.start_date}")
    clash = next(
        (at for at, day in enumerate(model.extra_sessions) if day in model.extra_closures), None
    )
    if clash is not None:
        day = model.extra_sessions[clash]
        raise refuse(
            ("extra_sessions", clash),
            f"{day} is also in extra_closures: a day is either closed or traded",
        )
    try:
        groups = resolve_groups(model.groups, path.name)
    except GroupsError as error:
        if error.loc is None:
            raise UniverseError(error.message) from None
        raise refuse(error.loc, error.message, at_key=True) from None
    keys = [(entry.symbol, entry.instrument_key) for entry in entries]
    problem = model.source.universe_refusal(model.market, keys)
    if problem is not None:
        raise refuse(*problem)
    return Universe(
        path=path,
        market=model.market,
        source=model.source.kind,
        source_settings=model.source,
        start_date=model.start_date,
        batch_size=model.batch_size,
        extra_closures=tuple(sorted(set(model.extra_closures))),
        tickers=entries,
        timeframes=model.source.timeframe_list(),
        update_batch_size=model.update_batch_size,
        end_date=model.end_date,
        timezone=model.timezone,
        update_time=model.update_time,
        skipped=skipped,
        actions=model.actions,
        adjust_dividends=model.adjust_dividends,
        max_daily_move=model.max_daily_move
        or fields.DAILY_MOVES.get(model.market, fields.DEFAULT_DAILY_MOVE),
        groups=groups,
        min_coverage=model.min_coverage,
        extra_sessions=tuple(sorted(set(model.extra_sessions))),
        signals=model.signals.settings(),
    )


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


class _UniverseFile(Strict):
    market: Annotated[str, PlainValidator(fields.market)]
    timezone: Annotated[str | None, PlainValidator(fields.timezone)] = None
    update_time: Annotated[dt.time | None, PlainValidator(fields.update_time)] = None
    start_date: Annotated[dt.date, PlainValidator(fields.start_date)]
    end_date: Annotated[dt.date | None, PlainValidator(fields.date)] = None
    batch_size: Annotated[int, PlainValidator(fields.batch_size)] = DEFAULT_BATCH_SIZE
    update_batch_size: Annotated[int, PlainValidator(fields.update_batch_size)] = (
        DEFAULT_UPDATE_BATCH_SIZE
    )
    source: Annotated[
        DemoSettings | CsvSettings | UpstoxSettings,
        Field(discriminator="kind"),
        BeforeValidator(_source),
    ]
    extra_closures: Annotated[
        tuple[Annotated[dt.date, PlainValidator(fields.date)], ...],
        BeforeValidator(fields.closures),
    ] = ()
    tickers: TickerSpec
    actions: Annotated[Path | None, PlainValidator(fields.actions_path)] = None
    adjust_dividends: Annotated[bool, PlainValidator(fields.boolean)] = False
    max_daily_move: Annotated[float | None, PlainValidator(fields.daily_move)] = None
    extra_sessions: Annotated[
        tuple[Annotated[dt.date, PlainValidator(fields.date)], ...],
        BeforeValidator(fields.closures),
    ] = ()
    min_coverage: Annotated[float, PlainValidator(fields.coverage)] = DEFAULT_MIN_COVERAGE
    groups: Annotated[dict[str, GroupSpec], BeforeValidator(group_mapping)] = Field(
        default_factory=dict
    )
    signals: Annotated[SignalsBlock, BeforeValidator(signals_block)] = SignalsBlock()
