"""A file shaped like Upstox's instruments master (NSE.json.gz), for instrument-key resolution."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from breadth_assets_testing.fake_upstox.market import KeyChange


def write_instruments_master(
    path: str | Path, entries: Mapping[str, str], changes: Iterable[KeyChange] = ()
) -> Path:
    """Write a gzipped JSON array shaped like Upstox's NSE.json.gz (trading symbol -> key).

    Decoys (an index, a BSE equity and an NSE future sharing each symbol) come before each
    equity record, so a resolver must filter on segment NSE_EQ and instrument_type EQ. The
    master as published after `changes`: a changed symbol is listed under its new key only
    (the old ISIN no longer trades).
    """
    entries = {**entries, **{change.symbol: change.new for change in changes}}
    records: list[dict[str, Any]] = [
        {
            "segment": "NSE_INDEX",
            "name": "Nifty 50",
            "exchange": "NSE",
            "instrument_type": "INDEX",
            "instrument_key": "NSE_INDEX|Nifty 50",
            "exchange_token": "26000",
            "trading_symbol": "NIFTY",
        }
    ]
    for n, (symbol, key) in enumerate(entries.items(), start=1):
        isin = key.split("|", 1)[-1]
        name = f"{symbol} LIMITED"
        records += [
            {
                "segment": "BSE_EQ",
                "name": name,
                "exchange": "BSE",
                "isin": isin,
                "instrument_type": "A",
                "instrument_key": f"BSE_EQ|{isin}",
                "exchange_token": str(500000 + n),
                "trading_symbol": symbol,
                "short_name": symbol.title(),
                "tick_size": 5.0,
                "lot_size": 1,
                "security_type": "NORMAL",
            },
            {
                "segment": "NSE_FO",
                "name": name,
                "exchange": "NSE",
                "instrument_type": "FUT",
                "instrument_key": f"NSE_FO|{40000 + n}",
                "exchange_token": str(40000 + n),
                "trading_symbol": f"{symbol} FUT 27 MAR 25",
                "underlying_key": key,
                "underlying_symbol": symbol,
                "tick_size": 5.0,
                "lot_size": 750,
                "expiry": 1743085799000,
            },
            {
                "segment": "NSE_EQ",
                "name": name,
                "exchange": "NSE",
                "isin": isin,
                "instrument_type": "EQ",
                "instrument_key": key,
                "exchange_token": str(1000 + n),
                "trading_symbol": symbol,
                "short_name": symbol.title(),
                "tick_size": 5.0,
                "lot_size": 1,
                "security_type": "NORMAL",
            },
        ]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        json.dump(records, fh)
    return out
