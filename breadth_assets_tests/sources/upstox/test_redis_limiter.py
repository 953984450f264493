"""The rate limiter shared through Redis, against a real redis-server (`scripts/redis.sh`)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from breadth_assets.sources.base import PriceRequest, SourceError
from breadth_assets.sources.upstox.limiter import RateLimiter
from breadth_assets.sources.upstox.rate_limits import Cancelled, LimiterUnavailable, RateLimits
from breadth_assets.sources.upstox.redis_limiter import KEY_PREFIX, RedisRateLimiter, token_key
from breadth_assets.sources.upstox.source import UpstoxSource
from breadth_assets_testing.fake_upstox import FakeUpstox, max_in_window

ROOT = Path(__file__).resolve().parents[3]
REDIS_ENV = "BREADTH_TEST_REDIS"
TOKEN = "tok-5f1c0a9e-secret-upstox-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """`BREADTH_TEST_REDIS` (CI starts one), else a private server from `scripts/redis.sh` on a
    free port, stopped afterwards; skips when redis-server is missing and cannot be installed
    (fails on CI)."""
    given = os.environ.get(REDIS_ENV, "").strip()
    if given:
        yield given
        return
    port = _free_port()
    env = {
        **os.environ,
        "BREADTH_REDIS_PORT": str(port),
        "BREADTH_REDIS_DIR": str(tmp_path_factory.mktemp("redis")),
    }
    script = ["bash", str(ROOT / "scripts" / "redis.sh")]
    started = subprocess.run(
        [*script, "start"], env=env, capture_output=True, text=True, timeout=900
    )
    if started.returncode != 0:
        why = f"no Redis for the tests ({started.stderr.strip()}); set {REDIS_ENV} or install it"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        subprocess.run([*script, "stop"], env=env, timeout=60, check=False)


@pytest.fixture
def server(redis_url) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def name(server) -> Iterator[str]:
    """A fresh key per test, deleted afterwards: tests never see each other's slots."""
    name = f"test-{uuid.uuid4().hex}"
    yield name
    server.delete(KEY_PREFIX + name)


def server_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def slots(client: redis.Redis, name: str) -> list[float]:
    return [score for _, score in client.zrange(KEY_PREFIX + name, 0, -1, withscores=True)]


def closed_port_url(password: str = "") -> str:
    auth = f":{password}@" if password else ""
    return f"redis://{auth}127.0.0.1:{_free_port()}/0"


def test_many_threads_in_one_process_stay_under_every_window(redis_url, name, server):
    limiter = RedisRateLimiter(redis_url, name, RateLimits(20, 40, 2000), margin=0.05)
    times: list[float] = []
    refused: list[Cancelled] = []
    record = threading.Lock()
    stop = threading.Event()

    def work() -> None:
        for _ in range(6):
            try:
                limiter.acquire(stop)
            except Cancelled as error:
                refused.append(error)
                continue
            now = time.time()
            with record:
                times.append(now)

    threads = [threading.Thread(target=work) for _ in range(8)]
    threading.Timer(4.0, stop.set).start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 48 wanted within 4 s; the minute allows 40, paced 20 a (1.05 s) second.
    assert len(times) == 40 and len(refused) == 8
    assert max_in_window(times, 1.0) <= 20
    assert max_in_window(slots(server, name), 1.05) <= 20
    ideal = 39 * 1.05 / 20
    assert ideal - 0.05 < max(times) - min(times) < ideal + 0.5


def test_slots_are_paced_at_one_per_widened_second_over_per_second(redis_url, name, server):
    limiter = RedisRateLimiter(redis_url, name, RateLimits(10, 500, 2000), margin=0.1)
    for _ in range(6):
        limiter.acquire()
    taken = slots(server, name)
    assert [b - a for a, b in itertools.pairwise(taken)] == [pytest.approx(0.11, abs=1e-6)] * 5


def test_the_minute_window_waits_for_the_oldest_entry_in_it_to_leave(redis_url, name, server):
    now = server_now(server)
    server.zadd(KEY_PREFIX + name, {"a": now - 59.5, "b": now - 59.4, "c": now - 59.3})
    limiter = RedisRateLimiter(redis_url, name, RateLimits(50, 3, 2000), margin=0.05)
    waited = limiter.acquire()
    assert slots(server, name)[-1] == pytest.approx(now - 59.5 + 60.05, abs=1e-6)
    assert 0.5 < waited < 0.8


def test_entries_past_the_longest_window_or_far_in_the_future_are_dropped(redis_url, name, server):
    now = server_now(server)
    server.zadd(KEY_PREFIX + name, {"old": now - 1900, "future": now + 100})
    limiter = RedisRateLimiter(redis_url, name, RateLimits(1, 500, 2000), margin=0.05)
    assert limiter.acquire() < 0.1
    assert len(slots(server, name)) == 1


def test_the_key_expires_once_its_newest_slot_leaves_the_longest_window(redis_url, name, server):
    RedisRateLimiter(redis_url, name, RateLimits(50, 500, 2000), margin=0.05).acquire()
    assert 1800.05 < server.pttl(KEY_PREFIX + name) / 1000 <= 1802.1


def test_limiters_with_far_apart_local_clocks_share_the_servers_timeline(redis_url, name, server):
    limits = RateLimits(5, 500, 2000)
    ahead = RedisRateLimiter(redis_url, name, limits, clock=lambda: time.monotonic() + 3600)
    behind = RedisRateLimiter(redis_url, name, limits, clock=lambda: time.monotonic() - 3600)
    times = []
    for i in range(12):
        (ahead, behind)[i % 2].acquire()
        times.append(time.time())
    assert max_in_window(times, 1.0) <= 5
    taken = slots(server, name)
    assert [b - a for a, b in itertools.pairwise(taken)] == [pytest.approx(0.21, abs=1e-6)] * 11


def test_cancel_gives_the_reserved_slot_back(redis_url, name, server):
    limiter = RedisRateLimiter(redis_url, name, RateLimits(2, 500, 2000), margin=0.05)
    limiter.acquire()
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    with pytest.raises(Cancelled):
        limiter.acquire(cancel)
    assert len(slots(server, name)) == 1
    limiter.acquire()
    first, second = slots(server, name)
    assert second - first == pytest.approx(0.525, abs=1e-6)


CHILD = textwrap.dedent(
    """
    import os, sys, threading, time
    from concurrent.futures import ThreadPoolExecutor
    from breadth_assets.sources.upstox.rate_limits import Cancelled, RateLimits
    from breadth_assets.sources.upstox.redis_limiter import RedisRateLimiter
    url, name, go, n, give_up = sys.argv[1:6]
    limiter = RedisRateLimiter(url, name, RateLimits(20, 60, 2000), margin=0.05)
    stop = threading.Event()
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.002)
    threading.Timer(float(give_up), stop.set).start()

    def one(_):
        try:
            limiter.acquire(stop)
        except Cancelled:
            return "cancelled"
        return repr(time.time())

    with ThreadPoolExecutor(4) as pool:
        for line in pool.map(one, range(int(n))):
            print(line, flush=True)
    """
)


def test_two_processes_with_thread_pools_together_stay_under_per_second_and_per_minute(
    redis_url, name, tmp_path
):
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, redis_url, name, str(go), "40", "5.0"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for _ in range(2)
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    go.touch()
    lines = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        lines += out.split()
    times = [float(line) for line in lines if line != "cancelled"]
    # 80 wanted in 5 s, 60 a minute allowed: the minute's 60 are shared by both processes.
    assert len(times) == 60 and lines.count("cancelled") == 20
    assert max_in_window(times, 1.0) <= 20
    assert max_in_window(times, 60.0) <= 60


def test_the_urls_password_appears_in_no_error(redis_url, name):
    password = "pw-7d41-very-secret"
    wrong = redis_url.replace("://", f"://no-such-user:{password}@", 1)
    for url in (closed_port_url(password), wrong):
        limiter = RedisRateLimiter(url, name, RateLimits(50, 500, 2000), timeout=1.0)
        with pytest.raises(LimiterUnavailable) as caught:
            limiter.acquire()
        assert password not in str(caught.value)
        assert password not in repr(limiter)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(ValueError) as caught:
        RedisRateLimiter(f"http://:{password}@127.0.0.1:1/0", name)
    assert password not in str(caught.value)


def test_an_unreachable_redis_fails_naming_host_and_port(name):
    url = closed_port_url()
    limiter = RedisRateLimiter(url, name, timeout=1.0)
    with pytest.raises(LimiterUnavailable, match=r"Redis at 127\.0\.0\.1:[0-9]+ is unreachable"):
        limiter.acquire()


def requests(count: int, first: int = 0) -> list[PriceRequest]:
    start, end = dt.date(2014, 1, 1), dt.date(2024, 12, 31)
    return [
        PriceRequest(f"P{i}", start, end, f"NSE_EQ|INE{i:03d}A01011")
        for i in range(first, first + count)
    ]


def test_an_unreachable_redis_fails_each_ticker_and_sends_nothing(tmp_path):
    url = closed_port_url()
    with FakeUpstox(token=TOKEN) as upstox:
        source = UpstoxSource(access_token=TOKEN, host=upstox.host, rate_limit_url=url)
        got = dict(source.fetch_many(requests(3)))
        sent = len(upstox.requests)
    assert sent == 0
    address = url.split("//")[1].split("/")[0]
    for request, answer in got.items():
        assert isinstance(answer, SourceError)
        assert str(answer).startswith(f"{request.ticker}: the Upstox rate limiter's Redis at ")
        assert f"{address} is unreachable" in str(answer)


def test_the_source_keys_the_user_by_a_hash_of_the_token_or_the_configured_name(redis_url):
    hashed = UpstoxSource(access_token=TOKEN, rate_limit_url=redis_url)._upstox()._limiter
    named = UpstoxSource(access_token=TOKEN, rate_limit_url=redis_url, rate_limit_key="acct-1")
    assert isinstance(hashed, RedisRateLimiter)
    assert hashed.key == KEY_PREFIX + token_key(TOKEN) and TOKEN not in hashed.key
    assert named._upstox()._limiter.key == KEY_PREFIX + "acct-1"
    assert isinstance(UpstoxSource(access_token=TOKEN)._upstox()._limiter, RateLimiter)
    assert redis_url not in repr(named)


_FETCH = """
import datetime as dt, json, sys
from breadth_assets.sources.base import PriceRequest
from breadth_assets.sources.upstox.source import UpstoxSource
host, token, url, name, rate_file, first = sys.argv[1:7]
source = UpstoxSource(access_token=token, host=host, rate_limit_url=url, rate_limit_key=name,
                      rate_limit_file=rate_file, per_second=10, read_timeout=2.0,
                      backoff_seconds=0.001, workers=4)
batch = [PriceRequest(f"P{i}", dt.date(2014, 1, 1), dt.date(2024, 12, 31),
                      f"NSE_EQ|INE{i:03d}A01011") for i in range(int(first), int(first) + 6)]
ok = sum(1 for _, answer in source.fetch_many(batch) if hasattr(answer, "bars"))
print(json.dumps({"ok": ok}))
"""


def test_two_processes_fetching_through_upstox_source_share_the_limit_via_redis(
    redis_url, name, tmp_path
):
    # Each process has its own limiter file: only Redis can hold them to 10 a second together.
    with FakeUpstox(token=TOKEN) as upstox:
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _FETCH,
                    upstox.host,
                    TOKEN,
                    redis_url,
                    name,
                    str(tmp_path / f"own-{first}.bin"),
                    str(first),
                ],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            for first in (0, 6)
        ]
        outputs = [process.communicate(timeout=120)[0] for process in processes]
        times = sorted(r.time for r in upstox.requests)
    assert [json.loads(out)["ok"] for out in outputs] == [6, 6]
    assert len(times) == 36
    assert max_in_window(times, 1.0) <= 10
    assert times[-1] - times[0] >= (36 - 10) / 10 - 0.5
