"""The rate limiter shared through Redis, against a real redis-server (`scripts/redis.sh`)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import socket
import statistics
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
from breadth_assets.sources.upstox.rate_limits import (
    DEFAULT_MARGIN,
    Cancelled,
    LimiterUnavailable,
    RateLimits,
)
from breadth_assets.sources.upstox.redis_limiter import (
    KEY_PREFIX,
    STATE_SUFFIX,
    RedisRateLimiter,
    token_key,
)
from breadth_assets.sources.upstox.source import UpstoxSource
from breadth_assets_testing.fake_upstox import FakeUpstox, max_in_window

ROOT = Path(__file__).resolve().parents[3]
REDIS_ENV = "BREADTH_TEST_REDIS"
TOKEN = "tok-5f1c0a9e-secret-upstox-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own from `scripts/redis.sh` (its persistence settings) on a free
    port and in its own directory, which tests may restart."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._env = {
            **os.environ,
            "BREADTH_REDIS_PORT": str(self.port),
            "BREADTH_REDIS_DIR": str(folder),
        }

    def _script(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(ROOT / "scripts" / "redis.sh"), command],
            env=self._env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    def start(self) -> None:
        started = self._script("start")
        if started.returncode != 0:
            why = f"no Redis for the tests ({started.stderr.strip()}); install redis-server"
            if os.environ.get("CI"):
                pytest.fail(why)
            pytest.skip(why)

    def stop(self) -> None:
        self._script("stop")

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """`BREADTH_TEST_REDIS` (CI starts one), else a private server from `scripts/redis.sh` on a
    free port, stopped afterwards; skips when redis-server is missing and cannot be installed
    (fails on CI)."""
    given = os.environ.get(REDIS_ENV, "").strip()
    if given:
        yield given
        return
    private = PrivateRedis(tmp_path_factory.mktemp("redis"))
    private.start()
    try:
        yield private.url
    finally:
        private.stop()


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    """A server of this test's own, to restart and flush (never the shared one)."""
    private = PrivateRedis(tmp_path / "redis")
    private.start()
    try:
        yield private
    finally:
        private.stop()


@pytest.fixture(autouse=True)
def journals(tmp_path, monkeypatch) -> Path:
    """The machine's journals (beside the rate file) in the test's folder, for every process it
    starts too."""
    monkeypatch.setenv("BREADTH_UPSTOX_RATE_FILE", str(tmp_path / "machine" / "rate.bin"))
    return tmp_path / "machine"


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
    server.delete(KEY_PREFIX + name, KEY_PREFIX + name + STATE_SUFFIX)


def empty(limiter: RedisRateLimiter) -> RedisRateLimiter:
    """The limiter on a new state known to be empty (`start_empty`), not assumed full."""
    assert limiter.start_empty()
    return limiter


def server_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


def slots(client: redis.Redis, name: str) -> list[float]:
    return [score for _, score in client.zrange(KEY_PREFIX + name, 0, -1, withscores=True)]


def closed_port_url(password: str = "") -> str:
    auth = f":{password}@" if password else ""
    return f"redis://{auth}127.0.0.1:{_free_port()}/0"


def test_many_threads_in_one_process_stay_under_every_window(redis_url, name, server):
    limiter = empty(RedisRateLimiter(redis_url, name, RateLimits(20, 40, 2000)))
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
    # 48 wanted within 4 s; the minute allows 40, paced 20 a (1.3 s) second.
    assert len(times) == 40 and len(refused) == 8
    assert max_in_window(times, 1.0) <= 20
    taken = slots(server, name)
    assert max_in_window(taken, 1 + DEFAULT_MARGIN) <= 20
    gaps = [b - a for a, b in itertools.pairwise(taken)]
    assert statistics.median(gaps) == pytest.approx((1 + DEFAULT_MARGIN) / 20)


def test_slots_are_paced_at_one_per_widened_second_over_per_second(redis_url, name, server):
    limiter = empty(RedisRateLimiter(redis_url, name, RateLimits(10, 500, 2000), margin=0.1))
    for _ in range(6):
        limiter.acquire()
    taken = slots(server, name)
    assert [b - a for a, b in itertools.pairwise(taken)] == [pytest.approx(0.11, abs=1e-6)] * 5


def test_the_minute_window_waits_for_the_oldest_entry_in_it_to_leave(redis_url, name, server):
    limiter = empty(RedisRateLimiter(redis_url, name, RateLimits(50, 3, 2000), margin=0.05))
    now = server_now(server)
    server.zadd(KEY_PREFIX + name, {"a": now - 59.5, "b": now - 59.4, "c": now - 59.3})
    waited = limiter.acquire()
    assert slots(server, name)[-1] == pytest.approx(now - 59.5 + 60.05, abs=1e-6)
    assert 0.5 < waited < 0.8


def test_entries_past_the_longest_window_or_far_in_the_future_are_dropped(redis_url, name, server):
    limiter = empty(RedisRateLimiter(redis_url, name, RateLimits(1, 500, 2000), margin=0.05))
    now = server_now(server)
    server.zadd(KEY_PREFIX + name, {"old": now - 1900, "future": now + 100})
    assert limiter.acquire() < 0.1
    assert len(slots(server, name)) == 1


def test_the_key_expires_once_its_newest_slot_leaves_the_longest_window(redis_url, name, server):
    empty(RedisRateLimiter(redis_url, name, RateLimits(50, 500, 2000), margin=0.05)).acquire()
    assert 1800.05 < server.pttl(KEY_PREFIX + name) / 1000 <= 1802.1
    assert server.ttl(KEY_PREFIX + name + STATE_SUFFIX) == -1  # the state's epoch stays


def test_limiters_with_far_apart_local_clocks_share_the_servers_timeline(redis_url, name, server):
    limits = RateLimits(5, 500, 2000)
    ahead = RedisRateLimiter(redis_url, name, limits, clock=lambda: time.monotonic() + 3600)
    behind = RedisRateLimiter(redis_url, name, limits, clock=lambda: time.monotonic() - 3600)
    empty(ahead)
    times = []
    for i in range(12):
        (ahead, behind)[i % 2].acquire()
        times.append(time.time())
    assert max_in_window(times, 1.0) <= 5
    taken = slots(server, name)
    pace = (1 + DEFAULT_MARGIN) / 5
    assert [b - a for a, b in itertools.pairwise(taken)] == [pytest.approx(pace, abs=1e-6)] * 11


def test_cancel_gives_the_reserved_slot_back(redis_url, name, server):
    limiter = empty(RedisRateLimiter(redis_url, name, RateLimits(2, 500, 2000), margin=0.05))
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
    limiter = RedisRateLimiter(url, name, RateLimits(20, 60, 2000))
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
    empty(RedisRateLimiter(redis_url, name))
    go = tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, redis_url, name, str(go), "40", "6.5"],
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
    # 80 wanted in 6.5 s, 60 a minute allowed: the minute's 60 are shared by both processes.
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


def members(client: redis.Redis, name: str) -> list[str]:
    return [member.decode() for member in client.zrange(KEY_PREFIX + name, 0, -1)]


def test_a_missing_state_is_assumed_to_have_held_a_full_second(redis_url, name, server):
    limiter = RedisRateLimiter(redis_url, name, RateLimits(5, 500, 2000))
    limiter.acquire()
    assumed = [m for m in members(server, name) if m.startswith("assumed:")]
    assert len(assumed) == 5
    scores = slots(server, name)
    assert [b - a for a, b in itertools.pairwise(scores[:5])] == [pytest.approx(0.2)] * 4
    # The first slot: when the oldest assumed request leaves the widened second.
    assert scores[5] == pytest.approx(scores[0] + 1 + DEFAULT_MARGIN, abs=1e-6)


def test_a_deleted_state_gets_this_machine_s_journal_back(redis_url, name, server, tmp_path):
    limits = RateLimits(50, 500, 2000)
    first = empty(RedisRateLimiter(redis_url, name, limits))
    for _ in range(3):
        first.acquire()
    taken = members(server, name)
    server.delete(KEY_PREFIX + name, KEY_PREFIX + name + STATE_SUFFIX)  # as FLUSHALL would
    # Another process of the machine (the same journal): the three slots count again, with
    # the assumed second.
    RedisRateLimiter(redis_url, name, limits).acquire()
    now = members(server, name)
    assert set(taken) <= set(now)
    assert sum(m.startswith("assumed:") for m in now) == 50
    server.delete(KEY_PREFIX + name, KEY_PREFIX + name + STATE_SUFFIX)
    # Another machine (its own journal) knows nothing of them: only the assumed second counts.
    RedisRateLimiter(redis_url, name, limits, journal=tmp_path / "elsewhere.bin").acquire()
    assert not set(taken) & set(members(server, name))


def test_a_restart_keeps_the_slots_and_starts_a_new_epoch(private_redis, tmp_path):
    client = redis.Redis.from_url(private_redis.url)
    limiter = empty(RedisRateLimiter(private_redis.url, "user", RateLimits(50, 500, 2000)))
    for _ in range(3):
        limiter.acquire()
    taken = members(client, "user")
    epoch = client.hget(KEY_PREFIX + "user" + STATE_SUFFIX, "epoch")
    private_redis.restart()
    assert members(client, "user") == taken  # the append-only file kept them
    limiter.acquire()
    # A crash may have lost the last second's writes: a new epoch, assumed full.
    assert client.hget(KEY_PREFIX + "user" + STATE_SUFFIX, "epoch") != epoch
    after = members(client, "user")
    assert set(taken) <= set(after)
    assert sum(m.startswith("assumed:") for m in after) == 50
    client.close()


_RUN = textwrap.dedent(
    """
    import datetime as dt, json, os, sys, threading, time
    from concurrent.futures import ThreadPoolExecutor
    from breadth_assets.sources.upstox.client import RetryPolicy, UpstoxCancelled, UpstoxClient
    from breadth_assets.sources.upstox.rate_limits import RateLimits
    from breadth_assets.sources.upstox.redis_limiter import RedisRateLimiter
    host, token, url, name, go, first, count, per_second, per_minute, give_up = sys.argv[1:11]
    limits = RateLimits(int(per_second), int(per_minute), 2000)
    client = UpstoxClient(host, token, RedisRateLimiter(url, name, limits), timeouts=(2, 5),
                          retry=RetryPolicy(3, 0.001))
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.002)
    stop = threading.Event()
    timer = threading.Timer(float(give_up), stop.set)
    timer.daemon = True
    timer.start()

    def one(i):
        try:
            client.candles(f"NSE_EQ|INE{i:03d}A01011", dt.date(2024, 1, 1), dt.date(2024, 12, 31),
                           cancel=stop)
        except UpstoxCancelled:
            return "cancelled"
        return "ok"

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(one, range(int(first), int(first) + int(count))))
    print(json.dumps({a: answers.count(a) for a in ("ok", "cancelled")}), flush=True)
    """
)


class Runs:
    """Fetching runs, each a new process through the Redis limiter, started ahead and released
    at once so that no process start-up separates one run from the one before."""

    def __init__(self, upstox: FakeUpstox, url: str, name: str, folder: Path, limits: RateLimits):
        self.upstox, self.url, self.name, self.folder = upstox, url, name, folder
        self.limits = limits
        self.first = 0

    def start(self, count: int, give_up: float = 60.0, machine: str = "machine"):
        """A run's process, ready and waiting; `finish` releases it and waits for its answer."""
        go = self.folder / f"go-{uuid.uuid4().hex}"
        argv = [self.upstox.host, TOKEN, self.url, self.name, str(go), str(self.first)]
        argv += [str(count), str(self.limits.per_second), str(self.limits.per_minute)]
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BREADTH_UPSTOX_RATE_FILE": str(self.folder / machine / "rate.bin"),
        }
        child = subprocess.Popen(
            [sys.executable, "-c", _RUN, *argv, str(give_up)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.first += count
        assert child.stdout.readline().strip() == "ready"
        return go, child

    @staticmethod
    def finish(started) -> dict[str, int]:
        go, child = started
        go.touch()
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        return json.loads(out)


def test_a_restart_or_flushall_between_runs_sends_nothing_over_the_per_second_limit(
    private_redis, tmp_path
):
    # 2 a second, paced one every 0.6 s: a run's last two requests leave 0.4 s of their second
    # free, and the next run is released within a few milliseconds of a FLUSHALL.
    limits = RateLimits(2, 500, 2000)
    client = redis.Redis.from_url(private_redis.url)
    empty(RedisRateLimiter(private_redis.url, "user", limits))
    with FakeUpstox(token=TOKEN) as upstox:
        runs = Runs(upstox, private_redis.url, "user", tmp_path, limits)
        started = [runs.start(4) for _ in range(3)]
        # Another machine: its journal knows nothing; the assumed second is what protects.
        started.append(runs.start(4, machine="another-machine"))
        answers = [runs.finish(started[0])]
        private_redis.restart()
        answers.append(runs.finish(started[1]))
        for run in started[2:]:
            client.flushall()
            answers.append(runs.finish(run))
        times = [r.time for r in upstox.requests]
    client.close()
    assert answers == [{"ok": 4, "cancelled": 0}] * 4
    assert len(times) == 16
    assert max_in_window(times, 1.0) <= 2


def test_a_restart_or_flushall_after_a_full_minute_sends_nothing_more_that_minute(
    private_redis, tmp_path
):
    limits = RateLimits(3, 6, 2000)
    client = redis.Redis.from_url(private_redis.url)
    empty(RedisRateLimiter(private_redis.url, "user", limits))
    with FakeUpstox(token=TOKEN) as upstox:
        runs = Runs(upstox, private_redis.url, "user", tmp_path, limits)
        assert runs.finish(runs.start(6)) == {"ok": 6, "cancelled": 0}
        after_restart = runs.start(3, give_up=2.5)
        private_redis.restart()
        assert runs.finish(after_restart) == {"ok": 0, "cancelled": 3}
        after_flush = runs.start(3, give_up=2.5)
        client.flushall()
        assert runs.finish(after_flush) == {"ok": 0, "cancelled": 3}
        times = [r.time for r in upstox.requests]
    client.close()
    assert len(times) == 6
    assert max_in_window(times, 60.0) <= 6


_THROTTLED = textwrap.dedent(
    """
    import datetime as dt, os, sys, time
    from breadth_assets.sources.upstox.client import RetryPolicy, UpstoxClient
    from breadth_assets.sources.upstox.rate_limits import RateLimits
    from breadth_assets.sources.upstox.redis_limiter import RedisRateLimiter
    host, token, url, name, go, first, count = sys.argv[1:8]
    limiter = RedisRateLimiter(url, name, RateLimits(4, 500, 2000))
    client = UpstoxClient(host, token, limiter, retry=RetryPolicy(3, 0.001))
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.002)
    for i in range(int(first), int(first) + int(count)):
        client.candles(f"NSE_EQ|INE{i:03d}A01011", dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    """
)


def throttled_window(upstox: FakeUpstox) -> list[float]:
    """Arrivals from 0.25 s to 1.0 s after the 429's: the pause (1.3 s from when the process
    that got it heard of it) leaves none; 0.25 s covers requests already on their way."""
    records = upstox.requests
    (refused,) = [r.time for r in records if r.status == 429]
    return [r.time for r in records if refused + 0.25 < r.time < refused + 1.0]


def test_a_429_in_one_process_pauses_another_sharing_the_limiter(redis_url, name, tmp_path):
    empty(RedisRateLimiter(redis_url, name))
    go = tmp_path / "go"
    with FakeUpstox(token=TOKEN) as upstox:
        upstox.inject("429", key="NSE_EQ|INE100A01011")  # the other process's first request
        argv = [sys.executable, "-c", _THROTTLED, upstox.host, TOKEN, redis_url, name, str(go)]
        children = [
            subprocess.Popen(
                [*argv, str(first), str(count)],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            for first, count in ((0, 12), (100, 1))
        ]
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        for child in children:
            child.communicate(timeout=120)
            assert child.returncode == 0
        quiet = throttled_window(upstox)
        statuses = [r.status for r in upstox.requests]
    # 4 a second (one every 0.3 s): without the shared pause, 2 or 3 would have arrived.
    assert quiet == []
    assert statuses.count(429) == 1 and statuses.count(200) == 13
