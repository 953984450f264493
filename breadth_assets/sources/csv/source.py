"""Daily bars from CSV files: a folder of per-ticker files, or one long file with a ticker column.

Hand-made and exported files are where bad rows come from, so a bad row never stops a ticker: it
is left out and reported as `<file>:<line>: <reason>` (line 1 is the header). Only a file that
cannot be used at all (missing, a directory, unreadable, without a needed column) raises
`SourceError`, one line naming the ticker, the file and why: the ticker fails, the others go on.
Headers are matched exactly, then ignoring case, so Date/Open/High/... need no mapping.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field

from breadth_assets.analytics.bars import PRICES, bound, ohlc_breaks
from breadth_assets.schema import PRICE_COLUMNS
from breadth_assets.sources.base import (
    PriceRequest,
    PriceSource,
    SourceError,
    TickerBars,
)
from breadth_assets.sources.csv.settings import (
    DEFAULT_FILE_PATTERN,
    LAYOUTS,
    Columns,
    CsvSettings,
    DateFormat,
    FilePattern,
    Layout,
    file_problem,
    find_header,
)

_VALUE_FIELDS = ("date", *PRICES, "volume")
_DATE_DTYPE = "datetime64[us]"
_LONG_CACHE_SIZE = 4


@dataclass
class _LongFile:
    """One long file as read, and its rows grouped by normalised ticker per ticker header."""

    signature: tuple[int, int]
    frame: pd.DataFrame
    undecodable: dict[int, str]
    groups: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


_long_files: dict[str, _LongFile] = {}
_long_lock = threading.Lock()


class CsvSource(PriceSource):
    """Bars read from CSV files, with bad rows rejected and reported by file and line."""

    kind: ClassVar[str] = "csv"
    file_settings: ClassVar[frozenset[str]] = frozenset(CsvSettings.model_fields) - {"kind"}

    path: str = Field(description="A folder of per-ticker files, or one long file.")
    layout: Layout = Field(default="per_ticker", description=" | ".join(LAYOUTS))
    file_pattern: FilePattern = Field(
        default=DEFAULT_FILE_PATTERN,
        description="File name of a ticker in the folder (per_ticker).",
    )
    columns: Columns = Field(
        default={}, description="Our column name -> the file's header; unmapped names are ours."
    )
    date_format: DateFormat = Field(
        default=None, description="strftime format of the dates, else ISO dates."
    )

    def fetch(self, request: PriceRequest) -> TickerBars:
        if self.layout == "long":
            file, frame, positions, undecodable = self._long_rows(request.ticker)
        else:
            file = self._ticker_file(request.ticker)
            frame, undecodable = _read(file, request.ticker)
            positions = np.arange(len(frame))
        headers = self._headers(frame, file, request.ticker, _VALUE_FIELDS)
        raw = pd.DataFrame(
            {name: frame[headers[name]].to_numpy()[positions] for name in _VALUE_FIELDS}
        )
        lines = positions + 2
        bad_text = {
            row: undecodable[int(at)] for row, at in enumerate(positions) if at in undecodable
        }
        return _validate(request, raw, lines, file, self.date_format, bad_text)

    def _ticker_file(self, ticker: str) -> Path:
        """The ticker's file, which must lie inside the folder whatever the partition key says."""
        folder = os.path.normpath(self.path)
        file = os.path.normpath(os.path.join(folder, self.file_pattern.format(ticker=ticker)))
        if os.path.commonpath([folder, file]) != folder or file == folder:
            raise SourceError(f"{ticker}: {file}: outside the csv folder {folder}; not read")
        return Path(file)

    def _headers(
        self, frame: pd.DataFrame, file: Path, ticker: str, names: tuple[str, ...]
    ) -> dict[str, str]:
        """Our column name -> the file's header, exact match first, then ignoring case."""
        found: dict[str, str] = {}
        for name in names:
            wanted = self.columns.get(name, name).strip()
            header = find_header(frame.columns, wanted)
            if header is None:
                mapped = f" (mapped from {name!r})" if name in self.columns else ""
                raise SourceError(
                    f"{ticker}: {file}: no column {wanted!r}{mapped}; the file's headers are "
                    + ", ".join(repr(str(h)) for h in frame.columns)
                )
            found[name] = header
        return found

    def _long_rows(self, ticker: str) -> tuple[Path, pd.DataFrame, np.ndarray, dict[int, str]]:
        file = Path(self.path)
        entry = _long_file(file, ticker)
        header = self._headers(entry.frame, file, ticker, ("ticker",))["ticker"]
        with _long_lock:
            groups = entry.groups.get(header)
            if groups is None:
                keys = entry.frame[header].fillna("").str.strip().str.upper()
                groups = {str(k): v for k, v in keys.groupby(keys, sort=False).indices.items()}
                entry.groups[header] = groups
        positions = groups.get(ticker.strip().upper())
        if positions is None:
            raise SourceError(f"{ticker}: {file}: no rows for this ticker in column {header!r}")
        return file, entry.frame, np.asarray(positions), entry.undecodable


@contextlib.contextmanager
def _file_errors(file: Path, ticker: str) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        raise SourceError(f"{ticker}: {file}: {file_problem(error, file)}") from None


def _decode(data: bytes, file: Path, ticker: str) -> tuple[str, dict[int, str]]:
    """The file's text, and for each line that is not UTF-8 (1 is the header) the reason.

    Such a line is decoded with replacement characters so that it still makes one row (to be
    refused with its line number) and the rows after it keep theirs.
    """
    try:
        return data.decode("utf-8-sig"), {}
    except UnicodeDecodeError:
        pass
    data = data.removeprefix(codecs.BOM_UTF8)
    lines, bad = [], {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            bad[number] = (
                f"not UTF-8 text (byte 0x{raw[error.start]:02x} at column {error.start + 1})"
            )
            lines.append(raw.decode("utf-8", errors="replace"))
    if 1 in bad:
        raise SourceError(f"{ticker}: {file}:1: the header is {bad[1]}")
    return "\n".join(lines), bad


def _read(file: Path, ticker: str) -> tuple[pd.DataFrame, dict[int, str]]:
    """The whole file as text, one row per line after the header (blank lines kept as rows),
    and the rows (by position) whose line is not UTF-8, with the reason.

    A row with more fields than the header makes the file unusable: pandas would otherwise
    shift it into the index or drop its extra values silently.
    """
    with _file_errors(file, ticker):
        data = file.read_bytes()
    text, bad_lines = _decode(data, file, ticker)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.StringIO(text),
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
                index_col=False,
            )
    except pd.errors.EmptyDataError:
        raise SourceError(f"{ticker}: {file}: the file is empty") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SourceError(f"{ticker}: {file}: cannot be read as CSV: {reason}") from None
    return frame, {line - 2: reason for line, reason in bad_lines.items()}


def _long_file(file: Path, ticker: str) -> _LongFile:
    """The long file, read once and reused while its modification time and size are unchanged."""
    with _file_errors(file, ticker):
        stat = file.stat()
    key = str(file.resolve())
    signature = (stat.st_mtime_ns, stat.st_size)
    with _long_lock:
        entry = _long_files.get(key)
        if entry is not None and entry.signature == signature:
            return entry
    entry = _LongFile(signature, *_read(file, ticker))
    with _long_lock:
        _long_files.pop(key, None)
        while len(_long_files) >= _LONG_CACHE_SIZE:
            _long_files.pop(next(iter(_long_files)))
        _long_files[key] = entry
    return entry


def _parse_dates(text: pd.Series, date_format: str | None) -> pd.Series:
    try:
        parsed = pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce")
    except (ValueError, TypeError):
        parsed = pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce", utc=True)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    return parsed.dt.normalize().astype(_DATE_DTYPE)


def _numbers(text: pd.Series) -> np.ndarray:
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def _validate(
    request: PriceRequest,
    raw: pd.DataFrame,
    lines: np.ndarray,
    file: Path,
    date_format: str | None,
    bad_text: dict[int, str],
) -> TickerBars:
    """Keeps the good rows in [start, end]; reports the bad ones there or with no usable date.

    `bad_text` holds the rows whose line was not UTF-8: refused whatever their values.
    """
    text = {name: raw[name].fillna("").astype(str).str.strip() for name in _VALUE_FIELDS}
    blank = np.logical_and.reduce([(text[name] == "").to_numpy() for name in _VALUE_FIELDS])
    issues: dict[int, list[str]] = {}

    def report(mask: np.ndarray, reason: Callable[[int], str]) -> None:
        for row in np.flatnonzero(mask & ~blank):
            issues.setdefault(int(row), []).append(reason(row))

    dates = _parse_dates(text["date"], date_format)
    no_date = dates.isna().to_numpy()
    expected = f"expected {date_format}" if date_format else "expected YYYY-MM-DD"
    report(no_date, lambda r: f"unparsable date {text['date'].iat[r]!r} ({expected})")

    numbers = {name: _numbers(text[name]) for name in (*PRICES, "volume")}
    priced = np.logical_and.reduce([numbers[name] > 0 for name in PRICES])
    for rule, broken in ohlc_breaks(numbers).items():
        name, other = rule.field, rule.other
        if rule.relation == "bounded":
            report(
                broken,
                lambda r, n=name: (
                    f"{n} is above the plausible bound {bound(n):g}: {text[n].iat[r]}"
                ),
            )
        elif other is None:
            missing = np.isnan(numbers[name])
            report(missing, lambda r, n=name: f"{n} is not a number: {text[n].iat[r]!r}")
            word = "not positive" if rule.relation == "positive" else "negative"
            report(broken & ~missing, lambda r, n=name, w=word: f"{n} is {w}: {text[n].iat[r]}")
        else:
            word = "below" if rule.relation == "at least" else "above"
            report(
                priced & broken,
                lambda r, n=name, w=word, o=other: (
                    f"{n} {text[n].iat[r]} is {w} {o} {text[o].iat[r]}"
                ),
            )

    for row, reason in bad_text.items():
        issues[row] = [reason]
    good = ~blank
    good[list(issues)] = False
    day_values = dates.to_numpy()
    good_rows = np.flatnonzero(good)
    good_days = day_values[good_rows]
    repeated = pd.Series(good_days).duplicated(keep="first").to_numpy()
    if repeated.any():
        order = pd.Series(np.arange(len(good_rows)))
        first = order.groupby(good_days).transform("first").to_numpy()
        for at in np.flatnonzero(repeated):
            row, first_row = good_rows[at], good_rows[first[at]]
            day = pd.Timestamp(day_values[row]).date()
            issues[int(row)] = [f"duplicate date {day} (first on line {lines[first_row]})"]
            good[row] = False

    start = np.datetime64(request.start, "us")
    end = np.datetime64(request.end, "us")
    in_range = (day_values >= start) & (day_values <= end)
    rejected = [
        f"{file}:{lines[row]}: {'; '.join(reasons)}"
        for row, reasons in sorted(issues.items())
        if no_date[row] or in_range[row]
    ]

    keep = good & in_range
    bars = pd.DataFrame(
        {
            "ticker": request.ticker,
            "date": day_values[keep],
            **{name: numbers[name][keep] for name in (*PRICES, "volume")},
        },
        columns=list(PRICE_COLUMNS),
    )
    bars = bars.sort_values("date", kind="stable", ignore_index=True)
    return TickerBars(request.ticker, bars, rejected)
