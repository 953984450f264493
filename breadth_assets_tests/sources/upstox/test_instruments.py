"""Trading symbol -> instrument key through Upstox's instruments master (NSE.json.gz)."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import pytest

from breadth_assets.sources.upstox.instruments import InstrumentError, equity_keys, resolve
from breadth_assets_testing.fake_upstox import write_instruments_master

SBIN = "NSE_EQ|INE062A01020"
INFY = "NSE_EQ|INE009A01021"
TCS = "NSE_EQ|INE467B01029"


@pytest.fixture
def master(tmp_path: Path) -> Path:
    return write_instruments_master(tmp_path / "NSE.json.gz", {"SBIN": SBIN, "INFY": INFY})


def test_symbol_resolves_to_the_nse_equity_key_not_the_decoys_before_it(master):
    # The master lists a BSE_EQ record and an NSE_FO future for SBIN before its NSE_EQ record.
    assert resolve("SBIN", master) == SBIN
    assert resolve("INFY", master) == INFY


def test_only_nse_equities_are_mapped(master):
    assert equity_keys(master) == {"SBIN": SBIN, "INFY": INFY}


def test_lower_case_and_padded_symbols_resolve(master):
    assert resolve("sbin", master) == SBIN
    assert resolve("  Infy ", master) == INFY


def test_master_path_may_be_a_string(master):
    assert resolve("SBIN", str(master)) == SBIN


def test_unknown_symbol_raises_naming_the_symbol_and_the_file(master):
    with pytest.raises(InstrumentError) as caught:
        resolve("NOSUCH", master)
    message = str(caught.value)
    assert message.startswith("NOSUCH: ")
    assert str(master) in message


def test_index_symbol_is_not_an_equity(master):
    # write_instruments_master adds NSE_INDEX "NIFTY".
    with pytest.raises(InstrumentError, match="NIFTY: no NSE equity"):
        resolve("NIFTY", master)


def test_without_a_master_file_the_error_names_the_symbol():
    with pytest.raises(InstrumentError, match=r"^SBIN: no instrument_key .* no instruments master"):
        resolve("SBIN", None)


def test_missing_master_file_raises_naming_the_path(tmp_path):
    missing = tmp_path / "gone" / "NSE.json.gz"
    with pytest.raises(InstrumentError, match=re.escape(f"{missing}: instruments master file not")):
        resolve("SBIN", missing)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"this is not gzip at all", id="not-gzip"),
        pytest.param(gzip.compress(b"<html>maintenance</html>"), id="gzip-not-json"),
        pytest.param(gzip.compress(b'[{"segment": "NSE_EQ"')[:-9], id="truncated-gzip"),
        pytest.param(gzip.compress(b"\xff\xfe\x00garbage"), id="gzip-not-utf8"),
        pytest.param(b"", id="empty-file"),
    ],
)
def test_unreadable_master_raises_naming_the_path(tmp_path, content):
    path = tmp_path / "NSE.json.gz"
    path.write_bytes(content)
    with pytest.raises(InstrumentError, match=re.escape(f"{path}: not a gzipped JSON instruments")):
        resolve("SBIN", path)


def test_master_that_is_not_a_json_array_raises_naming_the_path(tmp_path):
    path = tmp_path / "NSE.json.gz"
    path.write_bytes(gzip.compress(b'{"SBIN": "NSE_EQ|INE062A01020"}'))
    with pytest.raises(InstrumentError, match=re.escape(f"{path}: expected a JSON array")):
        resolve("SBIN", path)


def test_rewritten_master_is_read_again(tmp_path):
    path = write_instruments_master(tmp_path / "NSE.json.gz", {"SBIN": SBIN})
    assert resolve("SBIN", path) == SBIN
    write_instruments_master(path, {"SBIN": SBIN, "TCS": TCS})
    assert resolve("TCS", path) == TCS


def _write_stored_gzip(path: Path, payload: bytes, mtime_ns: int) -> None:
    """Uncompressed gzip, so equal-length payloads give equal file sizes."""
    path.write_bytes(gzip.compress(payload, compresslevel=0, mtime=0))
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_master_with_a_new_modification_time_but_the_same_size_is_read_again(tmp_path):
    payload = gzip.decompress(
        write_instruments_master(tmp_path / "a.json.gz", {"SBIN": SBIN}).read_bytes()
    )
    path = tmp_path / "NSE.json.gz"
    _write_stored_gzip(path, payload, 1_700_000_000_000_000_000)
    assert resolve("SBIN", path) == SBIN
    size = path.stat().st_size
    changed = "NSE_EQ|INE062A01099"
    _write_stored_gzip(
        path, payload.replace(SBIN.encode(), changed.encode()), 1_700_000_100 * 10**9
    )
    assert path.stat().st_size == size
    assert resolve("SBIN", path) == changed


def test_unchanged_master_is_not_read_again(tmp_path):
    # Same size and modification time: the file counts as unchanged, so the first reading stays.
    payload = gzip.decompress(
        write_instruments_master(tmp_path / "a.json.gz", {"SBIN": SBIN}).read_bytes()
    )
    path = tmp_path / "NSE.json.gz"
    stamp = 1_700_000_000_000_000_000
    _write_stored_gzip(path, payload, stamp)
    assert resolve("SBIN", path) == SBIN
    _write_stored_gzip(path, payload.replace(SBIN.encode(), b"NSE_EQ|INE062A01099"), stamp)
    assert resolve("SBIN", path) == SBIN


def test_master_that_becomes_unreadable_is_reported_not_served_from_memory(tmp_path):
    path = write_instruments_master(tmp_path / "NSE.json.gz", {"SBIN": SBIN})
    assert resolve("SBIN", path) == SBIN
    path.write_bytes(b"garbage")
    with pytest.raises(InstrumentError, match=re.escape(str(path))):
        resolve("SBIN", path)
