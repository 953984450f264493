"""Trading symbol -> instrument key, from the instruments master file Upstox publishes.

The master (`NSE.json.gz`, refreshed daily) is a gzipped JSON array of every instrument of the
exchange; equities are the records with segment NSE_EQ and instrument type EQ. It is large, so
it is read once per process and kept while its modification time and size are unchanged.
"""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path

EQUITY_SEGMENT = "NSE_EQ"
EQUITY_TYPE = "EQ"

_cache: dict[str, tuple[tuple[int, int], dict[str, str]]] = {}
_lock = threading.Lock()


class InstrumentError(LookupError):
    """A symbol has no instrument key, or the master file cannot be used."""


def equity_keys(path: str | Path) -> dict[str, str]:
    """Upper-case trading symbol -> instrument key of every NSE equity in the master file."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise InstrumentError(f"{path}: instruments master file not found") from None
    except OSError as error:
        raise InstrumentError(f"{path}: cannot read the instruments master file: {error}") from None
    signature = (stat.st_mtime_ns, stat.st_size)
    with _lock:
        cached = _cache.get(str(path.resolve()))
        if cached is not None and cached[0] == signature:
            return cached[1]
        keys = _read(path)
        _cache[str(path.resolve())] = (signature, keys)
        return keys


def _read(path: Path) -> dict[str, str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as file:
            records = json.load(file)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InstrumentError(
            f"{path}: not a gzipped JSON instruments master file: {error}"
        ) from None
    if not isinstance(records, list):
        raise InstrumentError(f"{path}: expected a JSON array of instruments")
    keys: dict[str, str] = {}
    for record in records:
        if (
            isinstance(record, dict)
            and record.get("segment") == EQUITY_SEGMENT
            and record.get("instrument_type") == EQUITY_TYPE
            and record.get("trading_symbol")
            and record.get("instrument_key")
        ):
            keys.setdefault(str(record["trading_symbol"]).strip().upper(), record["instrument_key"])
    return keys


def resolve(symbol: str, path: str | Path | None) -> str:
    """The instrument key of an NSE equity symbol, or an error naming the symbol and the file."""
    if path is None:
        raise InstrumentError(
            f"{symbol}: no instrument_key in the universe file and no instruments master "
            "file (source.instruments) to look it up in"
        )
    key = equity_keys(path).get(symbol.strip().upper())
    if key is None:
        raise InstrumentError(
            f"{symbol}: no NSE equity with this trading symbol in the instruments master {path}"
        )
    return key
