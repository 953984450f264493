from __future__ import annotations

import bisect
import itertools
import os
import statistics
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from breadth_assets.sources.upstox.limiter import (
    DEFAULT_MARGIN,
    PRODUCTION_LIMITS,
    RateLimiter,
    RateLimits,
    default_state_path,
)
from breadth_assets.sources.upstox.rate_limits import assumed_full_second
from breadth_assets_testing.fake_upstox import FakeUpstox, over_limit


def max_in_window(times: list[float], window: float) -> int:
    """The most entries of `times` in any half-open window [t, t + window)."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0
    )


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.slept.append(seconds)
        self.now += seconds


def empty(limiter: RateLimiter) -> RateLimiter:
    """The limiter on a new state known to be empty (`start_empty`), not assumed full."""
    assert limiter.start_empty()
    return limiter


def values(path: Path) -> tuple[float, ...]:
    """The file's float64s: slot times, and a 429's pause as the negated time it ends."""
    data = path.read_bytes()
    return struct.unpack(f"<{len(data) // 8}d", data)


def test_max_in_window_counts_half_open_windows():
    assert max_in_window([0.0, 0.5, 1.0, 1.2], 1.0) == 3
    assert max_in_window([], 1.0) == 0


def test_windows_are_upstox_lengths_with_the_limits():
    assert RateLimits(5, 20, 100).windows() == ((1.0, 5), (60.0, 20), (1800.0, 100))
    assert PRODUCTION_LIMITS.windows() == ((1.0, 50), (60.0, 500), (1800.0, 2000))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_second": 51}, "per_second=51 is above Upstox's limit of 50 a second"),
        ({"per_minute": 600}, "per_minute=600 is above Upstox's limit of 500 a minute"),
        ({"per_30_minutes": 2001}, "per_30_minutes=2001 is above Upstox's limit of 2000"),
    ],
)
def test_limits_above_upstox_are_refused_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RateLimits(**kwargs)


@pytest.mark.parametrize("field", ["per_second", "per_minute", "per_30_minutes"])
@pytest.mark.parametrize("value", [0, -3])
def test_limits_below_one_are_refused_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"{field}={value} must be at least 1"):
        RateLimits(**{field: value})


@pytest.mark.parametrize("value", [2.5, 10.0, True, "10"])
def test_limits_must_be_whole_numbers(value):
    with pytest.raises(ValueError, match=r"per_minute=.* is not a whole number"):
        RateLimits(per_minute=value)


def test_slots_are_paced_evenly_at_the_per_second_rate(tmp_path):
    fake = FakeTime(now=0.0)
    limiter = empty(
        RateLimiter(tmp_path / "rate.bin", RateLimits(10, 500, 2000), 0.0, fake.clock, fake.sleep)
    )
    times = []
    for _ in range(11):
        limiter.acquire()
        times.append(fake.now)
    assert times == [pytest.approx(0.1 * k) for k in range(11)]


def test_pacing_is_widened_by_the_margin(tmp_path):
    fake = FakeTime(now=0.0)
    limiter = empty(
        RateLimiter(tmp_path / "rate.bin", RateLimits(10, 500, 2000), 0.1, fake.clock, fake.sleep)
    )
    for _ in range(6):
        limiter.acquire()
    assert fake.now == pytest.approx(5 * (1.0 + 0.1) / 10)
    assert fake.slept[-1] == pytest.approx((1.0 + 0.1) / 10)


def test_minute_window_wait_is_from_the_oldest_entry_that_must_leave(tmp_path):
    fake = FakeTime(now=100.0)
    limiter = empty(
        RateLimiter(tmp_path / "rate.bin", RateLimits(50, 3, 2000), 0.5, fake.clock, fake.sleep)
    )
    limiter.acquire()
    fake.now = 110.0
    limiter.acquire()
    limiter.acquire()
    fake.now = 120.0
    assert limiter.acquire() == pytest.approx(100.0 + 60.5 - 120.0)


def test_acquires_never_exceed_any_window_with_a_fake_clock(tmp_path):
    fake = FakeTime()
    limits = RateLimits(per_second=5, per_minute=20, per_30_minutes=45)
    limiter = empty(RateLimiter(tmp_path / "rate.bin", limits, 0.01, fake.clock, fake.sleep))
    times = []
    for _ in range(100):
        limiter.acquire()
        times.append(fake.now)
    for window, limit in limits.windows():
        assert max_in_window(times, window + 0.01) == limit
    # Paced at 1.01 / 5 s; 45 per 30 minutes: the 100th starts when the 55th leaves, which
    # started when the 10th left, 9 paces after the first. No wait is longer than needed.
    assert times[-1] - times[0] == pytest.approx(2 * 1800.01 + 9 * 1.01 / 5, abs=1e-6)


def test_limiters_sharing_a_file_share_the_limit(tmp_path):
    fake = FakeTime()
    limits = RateLimits(per_second=3, per_minute=500, per_30_minutes=2000)
    pair = [RateLimiter(tmp_path / "rate.bin", limits, 0.0, fake.clock, fake.sleep) for _ in "ab"]
    empty(pair[0])
    times = []
    for i in range(30):
        pair[i % 2].acquire()
        times.append(fake.now)
    assert max_in_window(times, 1.0) == 3


def test_state_file_holds_recent_little_endian_float64_times(tmp_path):
    fake = FakeTime(now=1000.0)
    path = tmp_path / "nested" / "dir" / "rate.bin"
    limiter = empty(RateLimiter(path, RateLimits(50, 500, 2000), 0.0, fake.clock, fake.sleep))
    limiter.acquire()
    fake.now = 1000.0 + 1800.5
    limiter.acquire()
    # The first is older than the longest window: dropped.
    assert path.read_bytes() == struct.pack("<d", 2800.5)
    assert path.stat().st_mode & 0o777 == 0o600


def test_corrupt_file_is_read_as_its_valid_prefix(tmp_path):
    path = tmp_path / "rate.bin"
    fake = FakeTime(now=50.0)
    path.write_bytes(struct.pack("<2d", 49.5, 49.6) + b"\x01\x02\x03")
    limiter = RateLimiter(path, RateLimits(3, 500, 2000), 0.0, fake.clock, fake.sleep)
    assert limiter.acquire() == 0.0  # third slot of the second
    assert limiter.acquire() == pytest.approx(0.5)  # waits for 49.5 to leave
    assert path.stat().st_size % 8 == 0


def test_garbage_and_future_entries_are_dropped(tmp_path):
    path = tmp_path / "rate.bin"
    fake = FakeTime(now=50.0)
    nan, inf = float("nan"), float("inf")
    path.write_bytes(struct.pack("<7d", nan, inf, 1e300, 80.0, -1e300, -inf, -nan))
    limiter = RateLimiter(path, RateLimits(1, 500, 2000), 0.0, fake.clock, fake.sleep)
    assert limiter.acquire() == 0.0
    assert values(path) == (50.0,)


def test_a_new_file_is_assumed_to_have_held_a_full_second_up_to_now(tmp_path):
    fake = FakeTime(now=1000.0)
    path = tmp_path / "rate.bin"
    limits = RateLimits(50, 500, 2000)
    limiter = RateLimiter(path, limits, 0.2, fake.clock, fake.sleep)
    # 50 assumed requests, one every 1/50 s up to now: the oldest leaves the widened second
    # (1.2 s) 0.22 s from now, and the schedule goes on from there.
    assert limiter.acquire() == pytest.approx(1.2 - 49 / 50)
    assert limiter.acquire() == pytest.approx(1.2 / 50)
    # Only the slots are written: the first one already paces every later one.
    assert values(path) == pytest.approx((1000.22, 1000.244))
    assert assumed_full_second(1000.0, limits)[0] == pytest.approx(999.02)


def test_the_assumed_second_holds_no_more_than_the_minute_allows(tmp_path):
    fake = FakeTime(now=1000.0)
    limiter = RateLimiter(
        tmp_path / "rate.bin", RateLimits(10, 4, 2000), 0.2, fake.clock, fake.sleep
    )
    for _ in range(4):  # 4 a minute: the 4 assumed requests leave it 60.2 s after the oldest
        limiter.acquire()
    assert assumed_full_second(1000.0, limiter.limits) == pytest.approx([999.7, 999.8, 999.9, 1000])
    assert fake.now == pytest.approx(999.7 + 60.2 + 3 * 0.12)


@pytest.mark.parametrize("per_second", [1, 10, 50])
def test_a_new_file_costs_a_first_run_at_most_the_widened_second(tmp_path, per_second):
    fake = FakeTime(now=1000.0)
    limits = RateLimits(per_second, 500, 2000)
    limiter = RateLimiter(tmp_path / "rate.bin", limits, 0.2, fake.clock, fake.sleep)
    assert 0 < limiter.acquire() <= 1.2 + 1e-9


def test_an_emptied_file_is_a_missing_state_too(tmp_path):
    fake = FakeTime(now=1000.0)
    path = tmp_path / "rate.bin"
    path.write_bytes(b"")
    limiter = RateLimiter(path, RateLimits(2, 500, 2000), 0.2, fake.clock, fake.sleep)
    assert limiter.acquire() == pytest.approx(1.2 - 0.5)


def test_deleting_the_file_between_runs_keeps_the_server_under_the_limit(tmp_path):
    fake = FakeTime(now=1000.0)
    path = tmp_path / "rate.bin"
    limits = RateLimits(5, 500, 2000)
    times = []
    for run in range(3):
        limiter = RateLimiter(path, limits, 0.0, fake.clock, fake.sleep)
        if run == 0:
            empty(limiter)
        for _ in range(7):
            limiter.acquire()
            times.append(fake.now)
        path.unlink()
    assert max_in_window(times, 1.0) == 5


def test_start_empty_leaves_an_existing_state_alone(tmp_path):
    fake = FakeTime(now=1000.0)
    path = tmp_path / "rate.bin"
    limiter = empty(RateLimiter(path, RateLimits(50, 500, 2000), 0.0, fake.clock, fake.sleep))
    assert limiter.acquire() == 0.0
    before = path.read_bytes()
    assert not limiter.start_empty()
    assert path.read_bytes() == before


def test_a_429_pauses_every_limiter_sharing_the_file(tmp_path):
    fake = FakeTime(now=1000.0)
    limits = RateLimits(50, 500, 2000)
    one, other = (
        RateLimiter(tmp_path / "rate.bin", limits, 0.2, fake.clock, fake.sleep) for _ in "ab"
    )
    empty(one)
    one.acquire()
    assert one.block(0.1) == pytest.approx(1.2)  # at least the rest of the widened second
    assert other.acquire() == pytest.approx(1.2)
    assert one.block(5.0) == 5.0  # a longer backoff of the client's
    assert other.acquire() == pytest.approx(5.0)
    assert one.block(1e9) == 300.0  # never longer than MAX_BLOCK


def test_a_slot_reserved_before_a_429_is_given_back_and_taken_after_the_pause(tmp_path):
    fake = FakeTime(now=1000.0)
    path = tmp_path / "rate.bin"
    limiter = empty(RateLimiter(path, RateLimits(5, 500, 2000), 0.0, fake.clock, fake.sleep))
    limiter.acquire()

    def sleep(seconds: float) -> None:  # the 429 arrives while this slot is being waited for
        limiter.sleep = fake.sleep
        limiter.block(2.0)
        fake.sleep(seconds)

    limiter.sleep = sleep
    limiter.acquire()
    assert fake.now == pytest.approx(1002.0)
    assert values(path) == (1000.0, 1002.0, -1002.0)  # the pause's end, negated, until it passes


def test_a_thread_that_wakes_too_late_takes_a_new_slot(tmp_path):
    fake = FakeTime(now=1000.0)
    path = tmp_path / "rate.bin"
    limiter = empty(
        RateLimiter(path, RateLimits(5, 500, 2000), 0.2, fake.clock, fake.sleep, late=0.05)
    )
    limiter.acquire()
    overslept = []

    def sleep(seconds: float) -> None:  # a busy machine: this wake-up comes 0.3 s late
        if not overslept:
            overslept.append(seconds)
            seconds += 0.3
        fake.sleep(seconds)

    limiter.sleep = sleep
    limiter.acquire()
    # The slot at 1000.24 was given back; the one taken at the late wake-up is what counts.
    assert overslept == [pytest.approx(0.24)]
    assert values(path) == (1000.0, pytest.approx(1000.54))


def test_default_state_path_honours_the_environment_override(monkeypatch, tmp_path):
    monkeypatch.setenv("BREADTH_UPSTOX_RATE_FILE", str(tmp_path / "mine.bin"))
    assert default_state_path() == tmp_path / "mine.bin"
    assert RateLimiter().path == (tmp_path / "mine.bin").resolve()


def test_default_state_path_is_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("BREADTH_UPSTOX_RATE_FILE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_state_path() == tmp_path / "breadth_assets" / "upstox-requests.bin"


def recorded_slots(path: Path) -> list[float]:
    return sorted(value for value in values(path) if value >= 0)


def test_many_threads_stay_under_the_limit_at_close_to_the_full_rate(tmp_path):
    limits = RateLimits(per_second=20, per_minute=500, per_30_minutes=2000)
    limiter = empty(RateLimiter(tmp_path / "rate.bin", limits))
    times: list[float] = []
    record = threading.Lock()

    def work():
        for _ in range(10):
            limiter.acquire()
            now = time.time()
            with record:
                times.append(now)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(times) == 80
    # Every 21 taken times span at least 1 s + the margin; the times recorded just after can bunch
    # up by a thread's lateness (at most `late`, else it takes a new slot), under the margin.
    assert max_in_window(times, 1.0) <= 20
    # Not throttled below the schedule either: the slots are one pacing step apart, but where a
    # late thread gave its slot back.
    pace = (1 + limiter.margin) / 20
    gaps = [b - a for a, b in itertools.pairwise(recorded_slots(limiter.path))]
    assert statistics.median(gaps) == pytest.approx(pace)


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from breadth_assets.sources.upstox.limiter import RateLimiter, RateLimits
    path, go, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    limiter = RateLimiter(path, RateLimits(10, 500, 2000))
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.002)
    for _ in range(n):
        limiter.acquire()
        print(repr(time.time()), flush=True)
    """
)


def test_processes_sharing_a_file_stay_under_the_limit_together(tmp_path):
    state, go = tmp_path / "rate.bin", tmp_path / "go"
    empty(RateLimiter(state))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(state), str(go), "15"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
        )
        for _ in range(3)
    ]
    for child in children:
        assert child.stdout.readline().strip() == "ready"
    go.touch()
    times = []
    for child in children:
        out, _ = child.communicate(timeout=60)
        assert child.returncode == 0
        times += [float(line) for line in out.split()]
    assert len(times) == 45
    assert max_in_window(times, 1.0) <= 10
    gaps = [b - a for a, b in itertools.pairwise(recorded_slots(state))]
    assert statistics.median(gaps) == pytest.approx((1 + DEFAULT_MARGIN) / 10)


FETCH = textwrap.dedent(
    """
    import datetime as dt, os, sys, time
    from concurrent.futures import ThreadPoolExecutor
    from breadth_assets.sources.upstox.client import RetryPolicy, UpstoxClient
    from breadth_assets.sources.upstox.limiter import RateLimiter, RateLimits
    host, token, path, go, first = sys.argv[1:6]
    client = UpstoxClient(host, token, RateLimiter(path, RateLimits(5, 500, 2000)),
                          retry=RetryPolicy(3, 0.001))
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.002)

    def one(i):
        client.candles(f"NSE_EQ|INE{i:03d}A01011", dt.date(2024, 1, 1), dt.date(2024, 12, 31))

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(one, range(int(first), int(first) + 12)))
    """
)


def test_processes_fetching_never_put_more_than_the_limit_into_a_second_at_the_server(tmp_path):
    # The server, not the client, counts: its arrival times include every thread's late wake-up,
    # the SDK and the server's own accept. It enforces 5 a second as Upstox would.
    state, go = tmp_path / "rate.bin", tmp_path / "go"
    empty(RateLimiter(state))
    with FakeUpstox(token="t", limits=((1.0, 5),)) as upstox:
        children = [
            subprocess.Popen(
                [sys.executable, "-c", FETCH, upstox.host, "t", str(state), str(go), str(first)],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
            )
            for first in (0, 100)
        ]
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        for child in children:
            child.communicate(timeout=120)
            assert child.returncode == 0
        records = upstox.requests
    arrivals = [r.time for r in records]
    assert [r.status for r in records] == [200] * 24
    assert max_in_window(arrivals, 1.0) <= 5
    assert over_limit(arrivals, 1.0, 5) == 0
