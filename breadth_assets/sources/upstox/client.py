"""One Upstox historical-candle request, made through the official SDK, limited and retried.

The SDK (`upstox-python-sdk`) builds the request; what it lacks is added here: one `ApiClient`
per process and host (each starts a thread pool), a Bearer header, explicit timeouts, no silent
urllib3 retries (they would bypass the rate limiter), a limiter slot for every
attempt, bounded exponential backoff with jitter, a 429 that pauses every process sharing the
limiter, and errors that say what Upstox said without ever carrying the token.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import certifi
import pandas as pd
import upstox_client
import urllib3
from upstox_client.rest import ApiException

from breadth_assets.sources.timeframes import Timeframe
from breadth_assets.sources.upstox.history import DAILY, CandleError, candles_frame
from breadth_assets.sources.upstox.rate_limits import Cancelled, SlotLimiter

AUTH_MESSAGE = "the Upstox access token is invalid or expired; set UPSTOX_ACCESS_TOKEN"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class UpstoxError(Exception):
    """A request that failed for good; says what Upstox answered, never the token."""


class UpstoxAuthError(UpstoxError):
    """401: no request can succeed until the token is replaced, so fetching stops at once."""


class UpstoxCancelled(UpstoxError):
    """The request was not sent: the fetch it belonged to stopped (after a 401)."""


class _Retryable(Exception):
    """An attempt that failed in a way worth trying again (429, 5xx, timeouts, bad bodies)."""

    def __init__(self, message: str, throttled: bool = False) -> None:
        super().__init__(message)
        self.throttled = throttled  # a 429: Upstox counted more than its limit


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    backoff_seconds: float = 0.5
    backoff_cap_seconds: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Exponential in the attempt number, with half of it jittered so clients spread out."""
        ceiling = min(self.backoff_cap_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * rng.random())


_api_clients: dict[tuple[str, str, int], upstox_client.ApiClient] = {}
_api_clients_lock = threading.Lock()


@atexit.register
def _close_api_clients() -> None:
    """Closes the SDK's thread pools before interpreter shutdown, where its own cleanup fails."""
    with _api_clients_lock:
        for client in _api_clients.values():
            client.pool.close()
            client.pool.join()
            client.pool = _ClosedPool()
        _api_clients.clear()


class _ClosedPool:
    def close(self) -> None:
        pass

    def join(self) -> None:
        pass


def _api_client(host: str, token: str, connections: int) -> upstox_client.ApiClient:
    """The process's `ApiClient` for this host and token, made once."""
    cache_key = (host, token, connections)
    with _api_clients_lock:
        client = _api_clients.get(cache_key)
        if client is None:
            configuration = upstox_client.Configuration()
            configuration.host = host.rstrip("/")
            client = upstox_client.ApiClient(configuration)
            client.rest_client.pool_manager = urllib3.PoolManager(
                num_pools=4,
                maxsize=connections,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=certifi.where(),
            )
            client.set_default_header("Authorization", f"Bearer {token}")
            _api_clients[cache_key] = client
        return client


def error_detail(body: bytes | str | None) -> str:
    """`UDAPI1148: <message>` from an Upstox error body, or a short note on what came instead."""
    if not body:
        return "no response body"
    try:
        payload = json.loads(body)
        error = payload["errors"][0]
        code = error.get("error_code") or error.get("errorCode") or "no error code"
        return f"{code}: {error.get('message') or 'no message'}"
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        return f"unreadable error body {text[:120]!r}"


class UpstoxClient:
    """Historical candles of one instrument and range: one request, retried until it is had."""

    def __init__(
        self,
        host: str,
        token: str,
        limiter: SlotLimiter,
        timeouts: tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy | None = None,
        connections: int = 16,
        log: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not token or not token.strip():
            raise UpstoxAuthError(AUTH_MESSAGE)
        self._api = upstox_client.HistoryV3Api(_api_client(host, token.strip(), connections))
        self._limiter = limiter
        self._timeouts = timeouts
        self._retry = retry or RetryPolicy()
        self._log = log or (lambda message: None)
        self._sleep = sleep
        self._rng = random.Random()

    def candles(
        self,
        instrument_key: str,
        start: dt.date,
        end: dt.date,
        timeframe: Timeframe = DAILY,
        cancel: threading.Event | None = None,
    ) -> pd.DataFrame:
        """Candles in [start, end] (one request's worth; see `history.chunk_ranges`).

        Once `cancel` is set, no further attempt is sent: `UpstoxCancelled` is raised instead.
        """
        last = ""
        for attempt in range(1, self._retry.max_attempts + 1):
            try:
                self._limiter.acquire(cancel)
            except Cancelled:
                raise UpstoxCancelled("not sent: the fetch was stopped") from None
            try:
                return self._attempt(instrument_key, start, end, timeframe)
            except _Retryable as error:
                last, throttled = str(error), error.throttled
            delay = self._retry.delay(attempt, self._rng)
            if throttled:
                # A 429: every process sharing the limiter pauses, this retry included, instead
                # of this one alone; the limiter's pause is the wait.
                delay = self._limiter.block(delay)
            if attempt == self._retry.max_attempts:
                break
            self._log(
                f"{instrument_key} {start}..{end} {timeframe}: {last}; "
                f"retry {attempt} of {self._retry.max_attempts - 1} in {delay:.2f} s"
                + (", every process sharing the rate limiter paused" if throttled else "")
            )
            if throttled:
                continue
            if cancel is None:
                self._sleep(delay)
            elif cancel.wait(delay):
                raise UpstoxCancelled("not retried: the fetch was stopped")
        raise UpstoxError(f"gave up after {self._retry.max_attempts} attempts: {last}")

    def _attempt(
        self, instrument_key: str, start: dt.date, end: dt.date, timeframe: Timeframe
    ) -> pd.DataFrame:
        try:
            response = self._api.get_historical_candle_data1(
                instrument_key,
                timeframe.unit,
                timeframe.interval,
                end.isoformat(),
                start.isoformat(),
                _preload_content=False,
                _request_timeout=self._timeouts,
            )
            try:
                body = response.data
            finally:
                response.release_conn()
        except ApiException as error:
            detail = error_detail(error.body)
            if error.status == 401:
                raise UpstoxAuthError(AUTH_MESSAGE) from None
            if error.status in _RETRY_STATUSES or not error.status:
                message = f"HTTP {error.status or 'error'} {detail}"
                raise _Retryable(message, throttled=error.status == 429) from None
            raise UpstoxError(f"HTTP {error.status} {detail}") from None
        except urllib3.exceptions.NewConnectionError as error:
            raise _Retryable(f"connection failed ({type(error).__name__})") from None
        except urllib3.exceptions.ConnectTimeoutError:
            raise _Retryable(f"no connection within {self._timeouts[0]:g} s") from None
        except urllib3.exceptions.TimeoutError:
            raise _Retryable(f"no answer within {self._timeouts[1]:g} s") from None
        except urllib3.exceptions.HTTPError as error:
            raise _Retryable(f"connection failed ({type(error).__name__})") from None
        return _candles(body, timeframe)


def _candles(body: bytes, timeframe: Timeframe) -> pd.DataFrame:
    """The candles of an HTTP 200 answer; an error or unreadable body is worth a retry."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _Retryable(f"malformed JSON in an HTTP 200 answer ({len(body)} bytes)") from None
    if not isinstance(payload, dict):
        raise _Retryable("an HTTP 200 answer that is not a JSON object")
    if payload.get("status") != "success":
        raise _Retryable(f"HTTP 200 with status {payload.get('status')!r}: {error_detail(body)}")
    data = payload.get("data")
    if not isinstance(data, dict) or "candles" not in data:
        raise _Retryable("an HTTP 200 answer without data.candles")
    try:
        return candles_frame(data["candles"], timeframe)
    except CandleError as error:
        raise _Retryable(f"unreadable candles: {error}") from None
