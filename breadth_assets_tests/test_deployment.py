from __future__ import annotations

import dagster as dg
import pytest

from breadth_assets.deployment import price_source_for, store_for_deployment
from breadth_assets.resources.duckdb_store import DuckDBStore
from breadth_assets.resources.mongo_store import MongoStore
from breadth_assets.resources.upstox_source import UpstoxSource
from breadth_assets.universe import load_universe


def test_duckdb_is_the_default_store(monkeypatch, tmp_path):
    monkeypatch.delenv("BREADTH_STORE", raising=False)
    monkeypatch.setenv("BREADTH_DUCKDB_PATH", str(tmp_path / "x.duckdb"))
    store = store_for_deployment()
    assert isinstance(store, DuckDBStore)
    assert store.path == str(tmp_path / "x.duckdb")


def test_breadth_store_mongodb_reads_the_connection_string_through_envvar(monkeypatch):
    monkeypatch.setenv("BREADTH_STORE", "mongodb")
    monkeypatch.setenv("BREADTH_MONGODB_DATABASE", "markets")
    store = store_for_deployment()
    assert isinstance(store, MongoStore)
    assert store.database == "markets"
    assert store.uri == dg.EnvVar("MONGODB_URI")


def test_an_unknown_store_is_refused_naming_the_choices(monkeypatch):
    monkeypatch.setenv("BREADTH_STORE", "postgres")
    with pytest.raises(ValueError, match="duckdb, mongodb"):
        store_for_deployment()


def _upstox_universe(tmp_path):
    path = tmp_path / "universe.yaml"
    path.write_text(
        "market: NSE\nstart_date: 2020-01-01\nsource:\n  kind: upstox\n"
        "  rate_limits: {per_second: 20}\n  workers: 4\n"
        'tickers:\n  - symbol: SBIN\n    instrument_key: "NSE_EQ|INE062A01020"\n'
    )
    return load_universe(path)


def test_an_upstox_universe_gets_the_token_through_envvar_and_its_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("UPSTOX_ACCESS_TOKEN", "secret-value")
    monkeypatch.delenv("UPSTOX_API_HOST", raising=False)
    source = price_source_for(_upstox_universe(tmp_path))
    assert isinstance(source, UpstoxSource)
    assert isinstance(source.access_token, dg.EnvVar)
    assert source.access_token == "UPSTOX_ACCESS_TOKEN"
    assert source.host == "https://api.upstox.com"
    assert (source.per_second, source.workers) == (20, 4)


def test_upstox_api_host_points_the_source_at_another_host(monkeypatch, tmp_path):
    monkeypatch.setenv("UPSTOX_API_HOST", "http://127.0.0.1:8123")
    assert price_source_for(_upstox_universe(tmp_path)).host == "http://127.0.0.1:8123"


def test_the_limiter_url_reaches_the_source_through_envvar_with_the_configured_key(
    monkeypatch, tmp_path
):
    monkeypatch.setenv("BREADTH_UPSTOX_LIMITER_URL", "redis://:secret@10.0.0.5:6379/0")
    monkeypatch.setenv("BREADTH_UPSTOX_LIMITER_KEY", "acct-1")
    source = price_source_for(_upstox_universe(tmp_path))
    assert isinstance(source.rate_limit_url, dg.EnvVar)
    assert source.rate_limit_url == "BREADTH_UPSTOX_LIMITER_URL"
    assert source.rate_limit_key == "acct-1"


def test_without_a_limiter_url_the_source_keeps_the_machine_wide_file(monkeypatch, tmp_path):
    monkeypatch.delenv("BREADTH_UPSTOX_LIMITER_URL", raising=False)
    monkeypatch.delenv("BREADTH_UPSTOX_LIMITER_KEY", raising=False)
    source = price_source_for(_upstox_universe(tmp_path))
    assert source.rate_limit_url is None and source.rate_limit_key is None


def test_at_run_time_the_limiter_url_makes_the_source_use_the_redis_limiter(monkeypatch, tmp_path):
    from breadth_assets.upstox.redis_limiter import RedisRateLimiter

    monkeypatch.setenv("UPSTOX_ACCESS_TOKEN", "secret-value")
    monkeypatch.setenv("BREADTH_UPSTOX_LIMITER_URL", "redis://:secret@10.0.0.5:6379/0")
    monkeypatch.delenv("BREADTH_UPSTOX_LIMITER_KEY", raising=False)
    with dg.build_resources({"source": price_source_for(_upstox_universe(tmp_path))}) as built:
        limiter = built.source._upstox()._limiter
    assert isinstance(limiter, RedisRateLimiter)
    assert limiter.address == "10.0.0.5:6379"
