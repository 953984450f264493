"""Does the Upstox limiter's margin hold where it counts: at the server?

Why: the limiter paces request slots on the client, but Upstox counts requests as they arrive.
Between a slot and the arrival lie a thread that wakes late, the SDK building the request, the
connection and the server's own accept; if that jitter is larger than the margin, the server can
count more than the limit in one second although the client never sent more. This runs the fetch
several times at a given per-second limit: every run starts the fake Upstox server in its own
process, then `--processes` processes that share one limiter (a fresh rate file, or a fresh key
in Redis with `--redis`), each fetching its share of the requests through `UpstoxSource` with a
thread pool, all released at once. It prints, per run, the most requests the server saw in any
1 s window (its own arrival times), the most the clients sent in any 1 s window (when each
request left `acquire`), the 429s the server answered (it enforces the limits, as Upstox does)
and the rate reached; then the spread over the runs and how many runs went over the limit.
"requests over" counts the arrivals that found the limit already reached in the second before
them: what Upstox would refuse.

    .venv/bin/python benchmarks/limiter_margin.py [--rates 10,50] [--runs 12] [--seconds 6]
        [--processes 2] [--workers 8] [--latency 0.02] [--redis redis://127.0.0.1:63809/0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from breadth_assets.sources.upstox.rate_limits import DEFAULT_MARGIN
from breadth_assets_testing.fake_upstox import max_in_window, over_limit

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "benchmark-made-up-token"

# One child: its share of the requests (one request each: a year of daily bars), released when
# the go file appears; prints the times its requests left `acquire` and how many succeeded.
CHILD = """
import datetime as dt, json, os, sys, time
from breadth_assets.sources.base import PriceRequest
from breadth_assets.sources.upstox.source import UpstoxSource
from breadth_assets.sources.upstox.limiter import RateLimiter
from breadth_assets.sources.upstox.redis_limiter import RedisRateLimiter
host, token, rate_file, url, name, go, first, count, per_second, workers, margin = sys.argv[1:12]
source = UpstoxSource(access_token=token, host=host, rate_limit_file=rate_file,
                      rate_limit_url=url or None, rate_limit_key=name, per_second=int(per_second),
                      workers=int(workers), read_timeout=5.0, backoff_seconds=0.2)
client = source._upstox()
limiter = client._limiter
if margin:  # the same limiter with another margin
    if url:
        limiter = RedisRateLimiter(url, name, limiter.limits, margin=float(margin))
    else:
        limiter = RateLimiter(rate_file, limiter.limits, margin=float(margin))
    client._limiter = limiter
sent = []
acquire = limiter.acquire
def recording_acquire(cancel=None):
    waited = acquire(cancel)
    sent.append(time.time())
    return waited
limiter.acquire = recording_acquire
batch = [PriceRequest(f"M{i:05d}", dt.date(2024, 1, 1), dt.date(2024, 12, 31),
                      f"NSE_EQ|INEM{i:05d}") for i in range(int(first), int(first) + int(count))]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
ok = sum(1 for _, answer in source.fetch_many(batch) if hasattr(answer, "bars"))
print(json.dumps({"ok": ok, "sent": sent}), flush=True)
"""


@contextmanager
def fake_server(latency: float, per_second: int) -> Iterator[str]:
    """FakeUpstox in its own process, enforcing `per_second` (429 over it); its base URL."""
    command = [sys.executable, "-m", "breadth_assets_testing.fake_upstox", "--token", TOKEN]
    command += ["--latency", str(latency), "--limits", f"{per_second},500,2000"]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("READY "):
            sys.exit(f"the fake server did not start (it printed {line!r})")
        yield line.removeprefix("READY ")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def recorded(host: str) -> list[dict]:
    with urllib.request.urlopen(f"{host}/_fake/requests", timeout=30) as answer:
        return json.load(answer)


def one_run(args: argparse.Namespace, per_second: int, folder: Path) -> dict:
    total = per_second * args.seconds
    shares = [total // args.processes + (i < total % args.processes) for i in range(args.processes)]
    go = folder / f"go-{uuid.uuid4().hex}"
    rate_file = folder / f"rate-{uuid.uuid4().hex}.bin"
    name = f"bench-{uuid.uuid4().hex}"
    # The Redis limiter's journal goes beside the rate file: in the temporary folder.
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "BREADTH_UPSTOX_RATE_FILE": str(folder / f"machine-{uuid.uuid4().hex}.bin"),
    }
    with fake_server(args.latency, per_second) as host:
        children, first = [], 0
        for share in shares:
            argv = [host, TOKEN, str(rate_file), args.redis or "", name, str(go), str(first)]
            argv += [str(share), str(per_second), str(args.workers), args.margin]
            children.append(
                subprocess.Popen(
                    [sys.executable, "-c", CHILD, *argv],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,  # the retries' log lines; shown if it fails
                    text=True,
                    env=env,
                )
            )
            first += share
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                sys.exit("a fetching process did not start")
        go.touch()
        sent: list[float] = []
        ok = 0
        for child in children:
            out, err = child.communicate(timeout=600)
            if child.returncode != 0:
                sys.exit(f"a fetching process failed ({child.returncode}):\n{err}")
            answer = json.loads(out.strip().splitlines()[-1])
            ok += answer["ok"]
            sent += answer["sent"]
        records = recorded(host)
    arrivals = [r["time"] for r in records if r["unit"] == "days"]
    statuses = Counter(r["status"] for r in records if r["unit"] == "days")
    span = max(arrivals) - min(arrivals)
    return {
        "server_max": max_in_window(arrivals, 1.0),
        "server_over": over_limit(arrivals, 1.0, per_second),
        "client_max": max_in_window(sent, 1.0),
        "http_429": statuses.get(429, 0),
        "requests": len(arrivals),
        "ok": ok,
        "wanted": total,
        "rate": (len(arrivals) - 1) / span if span > 0 else 0.0,
    }


def spread(values: list[float]) -> str:
    return f"min {min(values):g}, median {statistics.median(values):g}, max {max(values):g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="10,50", help="per-second limits, comma-separated")
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=6, help="requests per run = rate x this")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--workers", type=int, default=8, help="UpstoxSource.workers per process")
    parser.add_argument("--latency", type=float, default=0.02, help="server seconds per request")
    parser.add_argument("--redis", default="", help="share the limiter through this Redis URL")
    parser.add_argument(
        "--margin", default="", help=f"the limiter's margin in seconds (default {DEFAULT_MARGIN})"
    )
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
    ).stdout.strip()
    limiter = f"Redis {args.redis}" if args.redis else "a rate file"
    print(
        f"{dt.datetime.now().isoformat(timespec='seconds')}, commit {commit or '?'}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.processes} processes x {args.workers} workers sharing {limiter}; "
        f"margin {args.margin or DEFAULT_MARGIN} s; server latency {args.latency:g} s; "
        f"{args.runs} runs per rate"
    )
    with tempfile.TemporaryDirectory() as folder:
        for per_second in rates:
            print(f"\n{per_second}/s, {per_second * args.seconds} requests a run:")
            print("  run  server max/1s  requests over  client max/1s  HTTP 429  requests/s")
            results = []
            for run in range(1, args.runs + 1):
                result = one_run(args, per_second, Path(folder))
                results.append(result)
                flag = "  OVER" if result["server_max"] > per_second else ""
                print(
                    f"  {run:3d}  {result['server_max']:13d}  {result['server_over']:13d}  "
                    f"{result['client_max']:13d}  {result['http_429']:8d}  "
                    f"{result['rate']:10.2f}{flag}",
                    flush=True,
                )
                if result["ok"] != result["wanted"]:
                    print(f"       only {result['ok']} of {result['wanted']} tickers fetched")
            over = sum(r["server_max"] > per_second for r in results)
            print(f"  server max in any 1 s: {spread([r['server_max'] for r in results])}")
            print(f"  client max in any 1 s: {spread([r['client_max'] for r in results])}")
            print(f"  requests/s:            {spread([round(r['rate'], 2) for r in results])}")
            print(
                f"  runs with a second over {per_second} at the server: {over} of {len(results)}; "
                f"requests over: {sum(r['server_over'] for r in results)}; "
                f"HTTP 429: {sum(r['http_429'] for r in results)}"
            )


if __name__ == "__main__":
    main()
