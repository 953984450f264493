"""Daily history for many tickers through `UpstoxSource.fetch_many`, against FakeUpstox.

Why: a backfill of Upstox daily bars should be limited by Upstox's rate limits (50 requests a
second, 500 a minute, 2000 per 30 minutes), not by our threads, SDK, limiter or parsing. This
fetches 200 tickers x 10 years (2 requests each: the history is chunked by 5 years) from the
fake server, run in its own process with a realistic latency, through the machine-wide limiter
on a fresh temporary state file, and prints requests/s, bars/s and two ratios:

- "% of the allowed rate": the sustained rate, requests from the first to the last one the server
  saw, over the rate the binding limit allows for this many requests (50/s up to 500 requests,
  then 500/min, then 2000/30 min). Our limiter paces slots at (1 s + margin) / 50, so
  1 / (1 + margin) is its ceiling while the per-second limit binds (77 % with the 0.3 s
  margin); the margin is what keeps the server's own count under 50 in every second
  (benchmarks/limiter_margin.py measures that);
- "% of our limiter's best": our `RateLimiter` as it is (its margin and pacing) on a clock that
  only moves when it sleeps, over the elapsed time, i.e. how much the rest of our code costs;
- "greedy ideal": every request as soon as every window has room, bursts included (the first 50
  at once), for reference.

    .venv/bin/python benchmarks/upstox_fetch.py [--tickers 200] [--years 10] [--latency 0.1]
        [--workers 16] [--fault-rate 0] [--per-second 50] [--per-minute 500]
        [--per-30-minutes 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil
from dateutil.relativedelta import relativedelta

from breadth_assets.sources.base import PriceRequest, SourceError
from breadth_assets.sources.upstox.history import DAILY, chunk_ranges
from breadth_assets.sources.upstox.limiter import DEFAULT_MARGIN, RateLimiter, RateLimits
from breadth_assets.sources.upstox.source import UpstoxSource
from breadth_assets_testing.fake_upstox import max_in_window

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "benchmark-made-up-token"  # the fake accepts whatever it is started with
END = dt.date(2025, 6, 30)  # a fixed recent date, so every run asks for the same bars
MB = 2**20


@contextmanager
def fake_server(latency: float, fault_rate: float) -> Iterator[tuple[str, psutil.Process]]:
    """FakeUpstox in a child process (its CPU does not share our GIL): its base URL and process."""
    command = [sys.executable, "-m", "breadth_assets_testing.fake_upstox", "--token", TOKEN]
    command += ["--latency", str(latency), "--fault-rate", str(fault_rate)]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("READY "):
            sys.exit(f"the fake server did not start (it printed {line!r})")
        yield line.removeprefix("READY "), psutil.Process(process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def recorded(host: str) -> list[dict]:
    """The server's records of every request it answered, with `time` = arrival time."""
    with urllib.request.urlopen(f"{host}/_fake/requests", timeout=30) as answer:
        return json.load(answer)


def allowed_rate(count: int, limits: RateLimits) -> float:
    """Requests a second that the binding window allows for a run of `count` requests."""
    if count <= limits.per_minute:
        return float(limits.per_second)
    if count <= limits.per_30_minutes:
        return min(limits.per_second, limits.per_minute / 60)
    return min(limits.per_second, limits.per_minute / 60, limits.per_30_minutes / 1800)


def ideal_seconds(count: int, windows: Sequence[tuple[float, int]]) -> float:
    """When the last of `count` requests starts if each starts at the earliest time at which
    every window [t - w, t] holds fewer than its limit (an entry at s counts while s + w > t)."""
    starts: list[float] = []
    for i in range(count):
        t = starts[-1] if starts else 0.0
        for window, limit in windows:
            if i >= limit:
                t = max(t, starts[i - limit] + window)
        starts.append(t)
    return starts[-1] if starts else 0.0


def limiter_seconds(count: int, limits: RateLimits, folder: Path) -> float:
    """When the last of `count` slots of our `RateLimiter` (its margin and pacing as they are)
    is taken, with no overhead at all: its clock only moves when it sleeps."""
    now = [1_700_000_000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(folder / "schedule.bin", limits, clock=lambda: now[0], sleep=sleep)
    limiter.start_empty()  # the schedule itself, not what a new state assumes before it
    first = now[0]
    for _ in range(count):
        limiter.acquire()
    return now[0] - first


def workload(tickers: int, years: int) -> list[PriceRequest]:
    start = END - relativedelta(years=years) + dt.timedelta(days=1)
    return [
        PriceRequest(f"BENCH{i:04d}", start, END, instrument_key=f"NSE_EQ|INEBENCH{i:04d}")
        for i in range(tickers)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=200)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.1, help="server seconds per request")
    parser.add_argument("--workers", type=int, default=16, help="UpstoxSource.workers")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="passed to the fake")
    defaults = RateLimits()
    parser.add_argument("--per-second", type=int, default=defaults.per_second)
    parser.add_argument("--per-minute", type=int, default=defaults.per_minute)
    parser.add_argument("--per-30-minutes", type=int, default=defaults.per_30_minutes)
    args = parser.parse_args()
    limits = RateLimits(args.per_second, args.per_minute, args.per_30_minutes)
    windows = limits.windows()
    requests = workload(args.tickers, args.years)
    planned = sum(len(chunk_ranges(r.start, r.end, DAILY)) for r in requests)
    print(
        f"workload: {args.tickers} tickers x {args.years} years of daily bars to {END} "
        f"= {planned} requests; limits {limits.per_second}/s, {limits.per_minute}/min, "
        f"{limits.per_30_minutes}/30 min; latency {args.latency:g} s; "
        f"{args.workers} workers; fault rate {args.fault_rate:g}"
    )
    print(f"  ideal time for those requests: {ideal_seconds(planned, windows):.2f} s + latency")

    with (
        tempfile.TemporaryDirectory() as folder,
        fake_server(args.latency, args.fault_rate) as (host, server),
    ):
        source = UpstoxSource(
            access_token=TOKEN,
            host=host,
            rate_limit_file=str(Path(folder) / "upstox-requests.bin"),
            workers=args.workers,
            per_second=limits.per_second,
            per_minute=limits.per_minute,
            per_30_minutes=limits.per_30_minutes,
        )
        bars = rejected = 0
        failures: list[str] = []
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        wall_started = time.time()
        for _, answer in source.fetch_many(requests):
            if isinstance(answer, SourceError):
                failures.append(str(answer))
            else:
                bars += len(answer.bars)
                rejected += len(answer.rejected)
        elapsed = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        records = [r for r in recorded(host) if r["unit"] == "days"]
        server_times = server.cpu_times()
        sent = len(records)
        paced = limiter_seconds(sent, limits, Path(folder)) + args.latency if sent else 0.0

    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    server_cpu = server_times.user + server_times.system
    peak_mb = cpu_after.ru_maxrss * 1024 / MB  # Linux reports KiB
    statuses = Counter(
        f"{r['status']} ({r['fault']})" if r["fault"] else str(r["status"]) for r in records
    )
    ideal = ideal_seconds(sent, windows) + args.latency if sent else 0.0
    arrivals = [r["time"] for r in records]

    print()
    print(f"requests (server's count): {sent:8d}   {dict(sorted(statuses.items()))}")
    print(f"bars returned:             {bars:8,d}   ({rejected} rejected as inconsistent)")
    print(f"tickers failed:            {len(failures):8d}")
    for message in failures[:5]:
        print(f"  {message}")
    print(f"elapsed:                   {elapsed:8.2f} s")
    print(f"requests per second:       {sent / elapsed:8.1f}")
    print(f"bars per second:           {bars / elapsed:8,.0f}")
    print(f"greedy ideal elapsed:      {ideal:8.2f} s   (bursts allowed, no margin, + one latency)")
    if len(arrivals) > 1:
        span = max(arrivals) - min(arrivals)
        allowed = allowed_rate(sent, limits)
        print(f"first request sent after:  {min(arrivals) - wall_started:8.2f} s")
        print(f"sustained rate:            {(sent - 1) / span:8.1f} /s  (first to last request)")
        ceiling = 100 / (1 + DEFAULT_MARGIN) if allowed == limits.per_second else 100.0
        print(
            f"% of the allowed rate:     {100 * (sent - 1) / span / allowed:8.1f} %   "
            f"(of {allowed:g}/s; the limiter's pacing allows {ceiling:.0f} %)"
        )
    print(f"our limiter's own best:    {paced:8.2f} s   (its margin and pacing, no overhead)")
    print(f"% of our limiter's best:   {100 * paced / elapsed:8.1f} %   (the rest is overhead)")
    for window, limit in windows:
        most = max_in_window(arrivals, window)
        verdict = "within" if most <= limit else "OVER"
        print(
            f"max requests in {window:4.0f} s:     {most:8d}   "
            f"({verdict} the limit of {limit}, server arrival times)"
        )
    print(f"peak RSS of this process:  {peak_mb:8.0f} MB")
    print(f"CPU of this process:       {cpu:8.2f} s   ({100 * cpu / elapsed:.0f} % of one core)")
    print(f"CPU of the fake server:    {server_cpu:8.2f} s")


if __name__ == "__main__":
    main()
