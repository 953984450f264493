"""DataFrames in and out of PostgreSQL's COPY, without formatting a value in Python.

Writes use COPY's binary format built by numpy: every field has a fixed width, so a chunk of rows
is one structured array. A NULL would need a shorter field, so NULLs travel as values the upsert
turns back into NULL (NaN for numbers and booleans, which travel as 0 and 1; -infinity for dates
and times), and text columns travel as
codes into a dictionary passed with the upsert (a batch holds few distinct tickers). Formatting
the rows as CSV in pandas instead costs 40 s for a million indicators rows.

Reads use COPY's CSV output, which `pandas.read_csv` parses in C; PostgreSQL prints a float with
the shortest digits that read back as the same double.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from breadth_assets.stores.postgres.sql import q

_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_PG_EPOCH_DAYS = 10_957  # 2000-01-01, PostgreSQL's epoch, in days after 1970-01-01
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400 * 1_000_000
_MINUS_INFINITY = {"DATE": np.iinfo(np.int32).min, "TIMESTAMP": np.iinfo(np.int64).min}

# contract type -> (temporary column type, numpy big-endian type, SQL reading it back)
_WIRE: dict[str, tuple[str, str, str]] = {
    "VARCHAR": ("INTEGER", ">i4", "(%({param})s::text[])[{col}]"),
    "DOUBLE": ("DOUBLE PRECISION", ">f8", "NULLIF({col}, 'NaN')"),
    "BIGINT": ("DOUBLE PRECISION", ">f8", "CAST(NULLIF({col}, 'NaN') AS BIGINT)"),
    "DATE": ("DATE", ">i4", "NULLIF({col}, '-infinity')"),
    "TIMESTAMP": ("TIMESTAMP", ">i8", "NULLIF({col}, '-infinity')"),
    "BOOLEAN": ("DOUBLE PRECISION", ">f8", "(NULLIF({col}, 'NaN') <> 0)"),
}


_TEXT = pd.StringDtype(storage="python", na_value=np.nan)
"""The dtype DuckDB gives text columns (its empty results give object, as here)."""


class BadColumn(ValueError):
    """A column whose values cannot be the contract's type (text in a number column)."""


@dataclass(frozen=True)
class Encoded:
    """A frame ready for `COPY incoming FROM STDIN (FORMAT binary)` and the upsert after it."""

    temp_columns: str
    """The temporary table's column declarations."""
    selected: list[str]
    """Per contract column, the SQL that reads it from the temporary table."""
    params: dict[str, list[str]]
    """The text dictionaries the `selected` SQL indexes (1-based; code 0 is NULL)."""
    chunks: Iterator[bytes]
    """The COPY data, a chunk at a time; raises BadColumn at a chunk that cannot be converted."""


def encode(df: pd.DataFrame, columns: Mapping[str, str], chunk_rows: int) -> Encoded:
    """The frame's contract columns as binary COPY data, `chunk_rows` rows per chunk."""
    wire = np.dtype(
        [("n", ">i2")]
        + [
            field
            for i, kind in enumerate(columns.values())
            for field in ((f"l{i}", ">i4"), (f"v{i}", _WIRE[kind][1]))
        ]
    )
    codes: dict[str, np.ndarray] = {}
    params: dict[str, list[str]] = {}
    selected: list[str] = []
    for i, (name, kind) in enumerate(columns.items()):
        param = f"text_{i}"
        selected.append(_WIRE[kind][2].format(col=q(f"c{i}"), param=param))
        if kind == "VARCHAR":
            found, uniques = pd.factorize(df[name], use_na_sentinel=True)
            codes[name] = found.astype(np.int32) + 1
            params[param] = [str(value) for value in uniques]
    declared = ", ".join(
        f"{q(f'c{i}')} {_WIRE[kind][0]}" for i, kind in enumerate(columns.values())
    )

    def chunks() -> Iterator[bytes]:
        """Converts the numbers a chunk at a time, so memory holds one chunk beside the frame."""
        for start in range(0, len(df), chunk_rows):
            stop = min(start + chunk_rows, len(df))
            rows = np.empty(stop - start, dtype=wire)
            rows["n"] = len(columns)
            for i, (name, kind) in enumerate(columns.items()):
                rows[f"l{i}"] = wire[f"v{i}"].itemsize
                rows[f"v{i}"] = (
                    codes[name][start:stop]
                    if kind == "VARCHAR"
                    else _numbers(df[name].iloc[start:stop], name, kind)
                )
            yield _HEADER + rows.tobytes() + _TRAILER

    return Encoded(declared, selected, params, chunks())


def _numbers(series: pd.Series, name: str, kind: str) -> np.ndarray:
    """The column as the wire's numbers: NaN for a missing number or boolean, -infinity for a
    missing day."""
    if kind == "BOOLEAN":
        try:
            flags = series.astype("boolean")
        except (TypeError, ValueError) as error:
            raise BadColumn(f"column {name} does not hold booleans: {error}") from None
        return flags.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    if kind in ("DOUBLE", "BIGINT"):
        try:
            return pd.to_numeric(series).to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as error:
            raise BadColumn(f"column {name} is not numeric: {error}") from None
    try:
        stamps = pd.to_datetime(series)
    except (TypeError, ValueError) as error:
        raise BadColumn(f"column {name} does not hold dates: {error}") from None
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_localize(None)  # wall-clock time, as the contract stores it
    missing = stamps.isna().to_numpy()
    if kind == "DATE":
        days = stamps.to_numpy().astype("datetime64[D]").astype(np.int64) - _PG_EPOCH_DAYS
        return np.where(missing, _MINUS_INFINITY[kind], days).astype(np.int32)
    micros = stamps.to_numpy().astype("datetime64[us]").astype(np.int64) - _PG_EPOCH_US
    return np.where(missing, _MINUS_INFINITY[kind], micros)


def copy_out_sql(query: str) -> str:
    return f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER true)"


_READ_AS = {
    "VARCHAR": object,
    "DATE": object,
    "TIMESTAMP": object,
    "BIGINT": "Int64",
    "BOOLEAN": object,
}
_NUMBERS = ("DOUBLE", "BIGINT")


def decode(data: bytes, columns: Mapping[str, str]) -> pd.DataFrame:
    """COPY's CSV output as the frame DuckDB returns: text as pandas' str (object when there is
    no row), dates and times as datetime64[us], doubles as float64 (NULL as NaN), counts as
    int64, booleans as bool (pandas' nullable boolean with a NULL)."""
    df = pd.read_csv(
        io.BytesIO(data),
        dtype={name: _READ_AS.get(kind, np.float64) for name, kind in columns.items()},
        keep_default_na=False,
        # an empty field is NULL; a number column may also hold a NaN another writer stored
        na_values={n: ["", "NaN"] if k in _NUMBERS else [""] for n, k in columns.items()},
    )
    for name, kind in columns.items():
        if kind == "VARCHAR" and len(df):
            df[name] = df[name].astype(_TEXT)
        elif kind in ("DATE", "TIMESTAMP"):
            form = "%Y-%m-%d" if kind == "DATE" else "ISO8601"
            df[name] = pd.to_datetime(df[name], format=form).astype("datetime64[us]")
        elif kind == "BIGINT":
            df[name] = df[name].astype("float64" if df[name].isna().any() else "int64")
        elif kind == "BOOLEAN":
            flags = df[name].map({"t": True, "f": False})
            df[name] = flags.astype("boolean" if flags.isna().any() else bool)
    return df[list(columns)]
