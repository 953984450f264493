"""The fetch loop that `raw_prices` and `intraday_prices` share: which partitions a source may
see, progress lines, and failures collected per ticker instead of raised."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import dagster as dg
from pydantic import Field

from breadth_assets.defs.progress import Progress
from breadth_assets.sources.base import CredentialsError, SourceError
from breadth_assets.universe.file import Universe, partition_key_problems

CREDENTIALS_PREFIX = "credentials refused: "
"""Starts the reason of a ticker the source refused for its credentials: the main job then
starts no later batch (`reporting.partial_failure` marks the failure)."""
Request = TypeVar("Request")
Answer = TypeVar("Answer")


class FetchRunConfig(dg.Config):
    end_date: str | None = Field(
        default=None,
        description="Last day to fetch (YYYY-MM-DD); by default the last trading day whose "
        "daily update time (a while after the close) has passed.",
    )


def run_end_date(end_date: str | None, universe: Universe) -> dt.date:
    """The run config's end date, else the last trading day whose update time has passed; never
    after the universe's `end_date`."""
    if end_date:
        day = dt.date.fromisoformat(end_date)
        return min(day, universe.end_date) if universe.end_date is not None else day
    return universe.last_day()


def refused_partitions(
    context: dg.AssetExecutionContext, tickers: Sequence[str], universe: Universe
) -> dict[str, str]:
    """Partition keys that no source may see (not a symbol, not in the universe), logged."""
    refused = partition_key_problems(tickers, universe)
    for ticker, reason in refused.items():
        context.log.error(f"{ticker}: {reason}")
    return refused


def fetched_answers(
    context: dg.AssetExecutionContext,
    answers: Iterable[tuple[Request, Answer | SourceError]],
    total: int,
    failures: dict[str, str],
    unit: str = "tickers",
    label: Callable[[Request], str] = lambda request: request.ticker,
) -> Iterator[tuple[Request, Answer]]:
    """The good answers of a fetch; a source error becomes its ticker's failure.

    A reason shared by many tickers (an expired token) is logged once. A ticker refused for the
    source's credentials is failed with the reason `CREDENTIALS_PREFIX` + the source's words.
    """
    progress = Progress(total, context.log.info, what="fetching", unit=unit)
    for request, answer in answers:
        progress.step()
        if isinstance(answer, SourceError):
            ticker = request.ticker
            reason = str(answer).removeprefix(f"{ticker}: ")
            if isinstance(answer, CredentialsError):
                reason = CREDENTIALS_PREFIX + reason
            if reason not in failures.values():
                context.log.error(f"{label(request)}: {reason}")
            failures.setdefault(ticker, reason)
            continue
        yield request, answer
    progress.finish()
