"""Subprocess mode: ``python -m breadth_assets_testing.fake_upstox --token T``."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Sequence

from breadth_assets_testing.fake_upstox.protocol import FAULT_KINDS
from breadth_assets_testing.fake_upstox.server import FakeUpstox

DESCRIPTION = (
    "FakeUpstox: a named test fake of Upstox's v3 historical-candle API, for tests and benchmarks."
)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve in this process, print ``READY <host>`` and stop on SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--fault-kinds", default=",".join(FAULT_KINDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--order", choices=("newest_first", "oldest_first"), default="newest_first")
    parser.add_argument("--timeout-sleep", type=float, default=3.0)
    parser.add_argument(
        "--limits",
        default="",
        help="enforce per-second,per-minute,per-30-minute limits (429 over them), e.g. 50,500,2000",
    )
    args = parser.parse_args(argv)
    done = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    fake = FakeUpstox(
        token=args.token,
        latency=args.latency,
        order=args.order,
        fault_rate=args.fault_rate,
        fault_kinds=tuple(k for k in args.fault_kinds.split(",") if k),
        seed=args.seed,
        timeout_sleep=args.timeout_sleep,
        limits=_limits(args.limits),
    )
    with fake:
        print(f"READY {fake.host}", flush=True)
        while not done.wait(0.2):
            pass
    return 0


def _limits(text: str) -> tuple[tuple[float, int], ...]:
    """The limits of `--limits 50,500,2000`: ((1, 50), (60, 500), (1800, 2000)); none if empty."""
    if not text.strip():
        return ()
    counts = [int(part) for part in text.split(",")]
    if len(counts) != 3:
        raise SystemExit("--limits takes three counts: per second, per minute, per 30 minutes")
    return tuple(zip((1.0, 60.0, 1800.0), counts, strict=True))
