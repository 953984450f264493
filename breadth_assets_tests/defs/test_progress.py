from __future__ import annotations

from breadth_assets.defs.progress import Progress
from breadth_assets_tests.support import TICKERS, materialize_tickers, write_universe


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_line_before_the_interval_has_passed():
    clock, lines = Clock(), []
    progress = Progress(10, lines.append, what="fetching", every=5, clock=clock)
    clock.now += 4.9
    progress.step()
    assert lines == []


def test_a_line_with_done_total_and_rate_once_the_interval_has_passed():
    clock, lines = Clock(), []
    progress = Progress(100, lines.append, what="fetching", every=5, clock=clock)
    for _ in range(20):
        clock.now += 0.25
        progress.step()
    assert lines == ["fetching: 20/100 tickers done, 4.0 tickers per second"]


def test_lines_are_throttled_to_one_per_interval():
    clock, lines = Clock(), []
    progress = Progress(1000, lines.append, every=5, clock=clock)
    for _ in range(1000):
        clock.now += 0.125
        progress.step()
    assert len(lines) == 25  # 125 s


def test_finish_always_logs_the_final_count_and_time():
    clock, lines = Clock(), []
    progress = Progress(3, lines.append, what="fetching", every=5, clock=clock)
    progress.step(3)
    clock.now += 2
    progress.finish()
    assert lines == ["fetching: 3/3 tickers done, 1.5 tickers per second (2.0 s)"]


def test_the_ticker_run_logs_its_fetch_progress(instance_with_tickers, store, tmp_path):
    result = materialize_tickers(
        instance_with_tickers, store, write_universe(tmp_path, TICKERS), "2023-03-31"
    )
    messages = [entry.user_message for entry in instance_with_tickers.all_logs(result.run_id)]
    assert any(m.startswith("fetching: 5/5 tickers done, ") for m in messages)
