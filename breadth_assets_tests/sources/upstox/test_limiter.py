from __future__ import annotations

import bisect
import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from breadth_assets.sources.upstox.limiter import (
    PRODUCTION_LIMITS,
    RateLimiter,
    RateLimits,
    default_state_path,
)


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
    limiter = RateLimiter(
        tmp_path / "rate.bin", RateLimits(10, 500, 2000), 0.0, fake.clock, fake.sleep
    )
    times = []
    for _ in range(11):
        limiter.acquire()
        times.append(fake.now)
    assert times == [pytest.approx(0.1 * k) for k in range(11)]


def test_pacing_is_widened_by_the_margin(tmp_path):
    fake = FakeTime(now=0.0)
    limiter = RateLimiter(
        tmp_path / "rate.bin", RateLimits(10, 500, 2000), 0.1, fake.clock, fake.sleep
    )
    for _ in range(6):
        limiter.acquire()
    assert fake.now == pytest.approx(5 * (1.0 + 0.1) / 10)
    assert fake.slept[-1] == pytest.approx((1.0 + 0.1) / 10)


def test_minute_window_wait_is_from_the_oldest_entry_that_must_leave(tmp_path):
    fake = FakeTime(now=100.0)
    limiter = RateLimiter(
        tmp_path / "rate.bin", RateLimits(50, 3, 2000), 0.5, fake.clock, fake.sleep
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
    limiter = RateLimiter(tmp_path / "rate.bin", limits, 0.01, fake.clock, fake.sleep)
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
    times = []
    for i in range(30):
        pair[i % 2].acquire()
        times.append(fake.now)
    assert max_in_window(times, 1.0) == 3


def test_state_file_holds_recent_little_endian_float64_times(tmp_path):
    fake = FakeTime(now=1000.0)
    path = tmp_path / "nested" / "dir" / "rate.bin"
    limiter = RateLimiter(path, RateLimits(50, 500, 2000), 0.0, fake.clock, fake.sleep)
    limiter.acquire()
    fake.now = 1000.0 + 1800.5
    limiter.acquire()
    assert struct.unpack("<d", path.read_bytes()) == (
        2800.5,
    )  # the first is older than the longest window: dropped
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
    path.write_bytes(struct.pack("<5d", float("nan"), float("inf"), 1e300, 80.0, -1e300))
    limiter = RateLimiter(path, RateLimits(1, 500, 2000), 0.0, fake.clock, fake.sleep)
    assert limiter.acquire() == 0.0


def test_default_state_path_honours_the_environment_override(monkeypatch, tmp_path):
    monkeypatch.setenv("BREADTH_UPSTOX_RATE_FILE", str(tmp_path / "mine.bin"))
    assert default_state_path() == tmp_path / "mine.bin"
    assert RateLimiter().path == (tmp_path / "mine.bin").resolve()


def test_default_state_path_is_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("BREADTH_UPSTOX_RATE_FILE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_state_path() == tmp_path / "breadth_assets" / "upstox-requests.bin"


def test_many_threads_stay_under_the_limit_at_close_to_the_full_rate(tmp_path):
    limits = RateLimits(per_second=20, per_minute=500, per_30_minutes=2000)
    limiter = RateLimiter(tmp_path / "rate.bin", limits, margin=0.05)
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
    # Every 21 taken times span at least 1.05 s; the times recorded just after can only bunch
    # up by scheduling jitter, well under the margin.
    assert max_in_window(times, 1.0) <= 20
    ideal = 79 * 1.05 / 20  # one slot per widened second / 20
    assert ideal - 0.05 < max(times) - min(times) < ideal + 0.5


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from breadth_assets.sources.upstox.limiter import RateLimiter, RateLimits
    path, go, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    limiter = RateLimiter(path, RateLimits(10, 500, 2000), margin=0.05)
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
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(state), str(go), "30"],
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
    assert len(times) == 90
    assert max_in_window(times, 1.0) <= 10
    # Not throttled far below the limit either: 90 requests at 10/s take 8.4 s at best; a busy
    # machine stalls the processes now and then, a limiter at half the rate takes 17 s.
    ideal = (90 / 10 - 1) * 1.05
    elapsed = max(times) - min(times)
    assert elapsed < ideal * 1.5
