"""The MongoDB store's rows as documents and back: BSON dates, NULLs, the DuckDB store's dtypes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from breadth_assets.stores.base import StoreError


def by_id(document: dict[str, Any]) -> str:
    return str(document["_id"])


def breadth_query(start: dt.date | None, end: dt.date | None, group: str | None) -> dict:
    """Breadth rows or members in [start, end] (open without a bound) of one group, or all."""
    query: dict[str, Any] = {}
    bounds = {}
    if start:
        bounds["$gte"] = bson_date(start)
    if end:
        bounds["$lte"] = bson_date(end)
    if bounds:
        query["date"] = bounds
    if group is not None:
        query["group_name"] = group
    return query


def bson_date(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day)


def as_documents(df: pd.DataFrame, columns: Mapping[str, str]) -> list[dict[str, Any]]:
    """Rows as BSON-ready dicts: dates at midnight UTC, NaN as null, numpy scalars as Python."""
    missing = [name for name in columns if name not in df.columns]
    if missing:
        raise StoreError(f"rows lack the columns {missing}")
    out = df[list(columns)].copy()
    for name, kind in columns.items():
        if kind == "DATE":
            out[name] = pd.to_datetime(out[name]).dt.normalize().dt.to_pydatetime()
        elif kind == "TIMESTAMP":
            out[name] = pd.to_datetime(out[name]).dt.to_pydatetime()
    records = out.astype(object).where(out.notna(), None).to_dict("records")
    for record in records:
        for name, value in record.items():
            if isinstance(value, np.generic):
                record[name] = value.item()
    return records


def as_frame(documents: Iterable[dict[str, Any]], columns: Mapping[str, str]) -> pd.DataFrame:
    """Documents as the DataFrame the DuckDB store returns: same columns, dtypes and NULLs."""
    df = pd.DataFrame(list(documents), columns=list(columns))
    for name, kind in columns.items():
        if kind in ("DATE", "TIMESTAMP"):
            df[name] = pd.to_datetime(df[name]).astype("datetime64[us]")
        elif kind == "DOUBLE":
            df[name] = pd.to_numeric(df[name], errors="coerce").astype("float64")
        elif kind == "BIGINT":
            # NULL (a field an older version did not write) as NaN, as the PostgreSQL store
            counts = pd.to_numeric(df[name])
            df[name] = counts.astype("float64" if counts.isna().any() else "int64")
        elif kind == "BOOLEAN":
            flags = df[name].astype("boolean")
            df[name] = flags if flags.isna().any() else flags.astype(bool)
        else:
            df[name] = df[name].astype("str")
    return df


def key_text(document: dict[str, Any], keys: Sequence[str]) -> str:
    return " ".join(
        f"{document[key]:%Y-%m-%d}"
        if isinstance(document[key], dt.datetime)
        else str(document[key])
        for key in keys
    )


def key_of(document: Mapping[str, Any], keys: Sequence[str]) -> tuple:
    """A document's key as comparable values (dates as naive datetimes)."""
    return tuple(
        pd.Timestamp(document.get(key)).to_pydatetime()
        if isinstance(document.get(key), dt.datetime)
        else document.get(key)
        for key in keys
    )
