"""Daily and intraday candles from Upstox's v3 historical API, through the official SDK.

A batch of tickers is fetched by a thread pool; every request, from every thread and every run
process on the machine, first takes a slot of the machine-wide rate limiter (or, with
`rate_limit_url`, of one shared through Redis by every machine), so the pool `price_api` decides
how many batches fetch at once and the limiter decides how fast. A ticker that fails costs only
itself (a limiter that cannot be reached fails it: nothing is sent unlimited), except a 401,
which stops the whole fetch: no request can succeed until the token is replaced.
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import ClassVar, TypeVar

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field, PrivateAttr

from breadth_assets.analytics.bars import PRICES, impossible_bars
from breadth_assets.schema import PRICE_COLUMNS
from breadth_assets.sources.base import (
    CredentialsError,
    IntradayRequest,
    PriceRequest,
    PriceSource,
    SourceError,
    TickerBars,
)
from breadth_assets.sources.timeframes import Timeframe
from breadth_assets.sources.upstox import PRODUCTION_HOST
from breadth_assets.sources.upstox.client import (
    AUTH_MESSAGE,
    RetryPolicy,
    UpstoxAuthError,
    UpstoxCancelled,
    UpstoxClient,
    UpstoxError,
)
from breadth_assets.sources.upstox.history import DAILY, chunk_ranges, merge_chunks
from breadth_assets.sources.upstox.instruments import InstrumentError, resolve
from breadth_assets.sources.upstox.limiter import PRODUCTION_LIMITS, RateLimiter, RateLimits
from breadth_assets.sources.upstox.rate_limits import LimiterUnavailable, SlotLimiter
from breadth_assets.sources.upstox.settings import (
    DEFAULT_WORKERS,
    RateLimitSettings,
    Workers,
)

_Request = TypeVar("_Request", PriceRequest, IntradayRequest)


class UpstoxSource(PriceSource):
    """Candles from Upstox; the token comes from `UPSTOX_ACCESS_TOKEN` through `EnvVar`."""

    kind: ClassVar[str] = "upstox"
    file_settings: ClassVar[frozenset[str]] = frozenset(
        {"instruments", "workers", *RateLimitSettings.model_fields}
    )

    access_token: str = Field(
        repr=False, description="Upstox access token; pass EnvVar('UPSTOX_ACCESS_TOKEN')."
    )
    host: str = Field(default=PRODUCTION_HOST, description="API host, without a trailing /.")
    instruments: str | None = Field(
        default=None, description="The instruments master (NSE.json.gz) to look symbols up in."
    )
    per_second: int = Field(
        default=PRODUCTION_LIMITS.per_second,
        description="Requests a second, machine-wide (or across machines: rate_limit_url).",
    )
    per_minute: int = Field(
        default=PRODUCTION_LIMITS.per_minute,
        description="Requests a minute, machine-wide (or across machines: rate_limit_url).",
    )
    per_30_minutes: int = Field(
        default=PRODUCTION_LIMITS.per_30_minutes, description="Requests per 30 minutes."
    )
    rate_limit_file: str | None = Field(
        default=None,
        description="Where the machine-wide limiter keeps request times; "
        "default $BREADTH_UPSTOX_RATE_FILE or ~/.cache/breadth_assets/upstox-requests.bin.",
    )
    rate_limit_url: str | None = Field(
        default=None,
        repr=False,
        description="redis://host:port/db shared by every machine fetching for this Upstox user "
        "(pass EnvVar('BREADTH_UPSTOX_LIMITER_URL'): it may hold a password); "
        "unset: the machine-wide file limiter.",
    )
    rate_limit_key: str | None = Field(
        default=None,
        description="Names the Upstox user in the shared limiter's Redis key; "
        "default a hash of the token.",
    )
    workers: Workers = Field(default=DEFAULT_WORKERS, description="Requests in flight per run.")
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=8, ge=1, description="Tries per request (429/5xx/timeouts).")
    backoff_seconds: float = Field(default=0.5, ge=0, description="First retry's base delay.")

    _client: UpstoxClient | None = PrivateAttr(default=None)
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def fetch(self, request: PriceRequest) -> TickerBars:
        for _, answer in self.fetch_many([request]):
            if isinstance(answer, SourceError):
                raise answer
            return answer
        raise AssertionError("fetch_many answers every request")

    def fetch_many(
        self, requests: Sequence[PriceRequest]
    ) -> Iterator[tuple[PriceRequest, TickerBars | SourceError]]:
        return self._map(requests, self._daily)

    def fetch_intraday(
        self, requests: Sequence[IntradayRequest]
    ) -> Iterator[tuple[IntradayRequest, pd.DataFrame | SourceError]]:
        return self._map(requests, self._intraday)

    def _map(
        self,
        requests: Sequence[_Request],
        work: Callable[[UpstoxClient, _Request, threading.Event], object],
    ) -> Iterator[tuple[_Request, object]]:
        """Answers as they complete; after a 401 the rest fail with the same message, unsent:
        requests waiting for a rate-limiter slot or a retry give the slot back and stop.

        Closing the iterator early cancels the requests not yet started.
        """
        if not requests:
            return
        # Parsed candles are many short-lived lists, which trigger the garbage collector's full
        # passes; over everything a Dagster process holds those pause every thread for tens of
        # milliseconds, so requests would leave late and bunch up at Upstox. Objects alive now
        # (modules, definitions) are frozen out of those passes until the fetch ends.
        gc.freeze()
        stop = threading.Event()

        def run(request: _Request) -> object:
            if stop.is_set():
                return CredentialsError(f"{request.ticker}: {AUTH_MESSAGE}")
            try:
                return work(self._upstox(), request, stop)
            except UpstoxCancelled:
                return CredentialsError(f"{request.ticker}: {AUTH_MESSAGE}")
            except UpstoxAuthError as error:
                stop.set()
                return _error(request.ticker, error, CredentialsError)
            except (UpstoxError, InstrumentError, LimiterUnavailable) as error:
                return _error(request.ticker, error)

        with ThreadPoolExecutor(min(self.workers, len(requests)), "upstox") as pool:
            futures = {pool.submit(run, request): request for request in requests}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            finally:
                stop.set()
                for future in futures:
                    future.cancel()
                gc.unfreeze()

    def _upstox(self) -> UpstoxClient:
        with self._client_lock:
            if self._client is None:
                limits = RateLimits(self.per_second, self.per_minute, self.per_30_minutes)
                self._client = UpstoxClient(
                    host=self.host,
                    token=self.access_token,
                    limiter=self._limiter(limits),
                    timeouts=(self.connect_timeout, self.read_timeout),
                    retry=RetryPolicy(self.max_attempts, self.backoff_seconds),
                    connections=self.workers,
                    log=dg.get_dagster_logger().warning,
                )
            return self._client

    def _limiter(self, limits: RateLimits) -> SlotLimiter:
        """Redis when several machines share the user, else the machine-wide file."""
        if not self.rate_limit_url:
            return RateLimiter(self.rate_limit_file, limits)
        from breadth_assets.sources.upstox.redis_limiter import (  # redis-py
            RedisRateLimiter,
            token_key,
        )

        name = self.rate_limit_key or token_key(self.access_token)
        return RedisRateLimiter(self.rate_limit_url, name, limits)

    def _instrument_key(self, ticker: str, given: str | None) -> str:
        return given or resolve(ticker, self.instruments)

    def instrument_keys(self, given: Mapping[str, str | None]) -> dict[str, str]:
        keys = {}
        for ticker, key in given.items():
            try:
                keys[ticker] = self._instrument_key(ticker, key)
            except InstrumentError:
                continue  # its fetch fails with the reason
        return keys

    def _candles(
        self,
        client: UpstoxClient,
        key: str,
        start: dt.date,
        end: dt.date,
        timeframe: Timeframe,
        stop: threading.Event,
    ) -> pd.DataFrame:
        frames = []
        for chunk_start, chunk_end in chunk_ranges(start, end, timeframe):
            try:
                frames.append(client.candles(key, chunk_start, chunk_end, timeframe, stop))
            except (UpstoxAuthError, UpstoxCancelled):
                raise
            except UpstoxError as error:
                raise UpstoxError(
                    f"{key} {timeframe} {chunk_start}..{chunk_end}: {error}"
                ) from None
        return merge_chunks(frames)

    def _daily(
        self, client: UpstoxClient, request: PriceRequest, stop: threading.Event
    ) -> TickerBars:
        key = self._instrument_key(request.ticker, request.instrument_key)
        candles = self._candles(client, key, request.start, request.end, DAILY, stop)
        candles = candles[
            (candles["ts"] >= pd.Timestamp(request.start))
            & (candles["ts"] <= pd.Timestamp(request.end))
        ]
        good, rejected = _sane(candles, key)
        bars = pd.DataFrame(
            {"ticker": request.ticker, "date": good["ts"].to_numpy(), **_values(good)},
            columns=list(PRICE_COLUMNS),
        )
        return TickerBars(request.ticker, bars, rejected)

    def _intraday(
        self, client: UpstoxClient, request: IntradayRequest, stop: threading.Event
    ) -> pd.DataFrame:
        key = self._instrument_key(request.ticker, request.instrument_key)
        candles = self._candles(client, key, request.start, request.end, request.timeframe, stop)
        good, _ = _sane(candles, key)
        return good.reset_index(drop=True)


def _error(ticker: str, error: Exception, kind: type[SourceError] = SourceError) -> SourceError:
    """The error as a SourceError (or `kind`) that names the ticker once."""
    text = str(error)
    return kind(text if text.startswith(f"{ticker}: ") else f"{ticker}: {text}")


def _values(candles: pd.DataFrame) -> dict[str, np.ndarray]:
    return {name: candles[name].to_numpy() for name in (*PRICES, "volume")}


def _sane(candles: pd.DataFrame, key: str) -> tuple[pd.DataFrame, list[str]]:
    """The candles that keep the bar rule (`analytics.bars`), and the others as reasons."""
    bad = impossible_bars(candles)
    if not bad.any():
        return candles, []
    rejected = [
        f"upstox {key} {row.ts}: o={row.open} h={row.high} l={row.low} c={row.close} "
        f"v={row.volume} is not a consistent candle"
        for row in candles[bad].itertuples()
    ]
    return candles[~bad], rejected
