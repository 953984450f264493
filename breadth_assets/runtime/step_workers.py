"""The Celery worker of a run's step: it records itself in the run's tags when it starts the step
and beats there (`step_heartbeat`); a run whose worker has not been heard from for
`heartbeat_timeout()` seconds is failed naming the worker (`StepWorker`, `fail_run`), and a
message of that step delivered again later is dropped (`step_refusal`), so a step never executes
twice at once. docs/design.md "When a worker dies"."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import dagster as dg

STEP_WORKER_TAG = "breadth_assets/worker/"
"""Followed by a step key: the Celery worker that took that step of the run, as JSON (`run`,
`worker`, `host`, `pid`, `heartbeat`, `every`, `ended`; see `StepWorker`)."""

HEARTBEAT_TIMEOUT_ENV = "BREADTH_WORKER_HEARTBEAT_TIMEOUT"
DEFAULT_HEARTBEAT_TIMEOUT = 120.0
MIN_HEARTBEAT_TIMEOUT = 6.0
HEARTBEATS_PER_TIMEOUT = 6
"""A worker beats six times per timeout: one late or lost write is never taken for a death."""
MISSED_HEARTBEATS = 3
"""However short the configured timeout, a worker is lost only after this many missed beats."""


def this_host() -> str:
    return socket.gethostname()


def recorded_for(run: dg.DagsterRun, tag: str) -> bool:
    """Whether tags recorded for a run are this run's own, not copied from a re-executed parent
    (a UI re-execution copies the parent's tags). Tags recorded before `tag` existed count as
    the run's own unless the run is a re-execution."""
    recorded = run.tags.get(tag)
    if recorded is None:
        return run.parent_run_id is None
    return recorded == run.run_id


def heartbeat_timeout() -> float:
    """`$BREADTH_WORKER_HEARTBEAT_TIMEOUT` (seconds, default 120): how long a Celery worker
    may stay silent while it executes a step before its run is marked FAILURE."""
    raw = os.environ.get(HEARTBEAT_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_HEARTBEAT_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{HEARTBEAT_TIMEOUT_ENV}={raw!r}: give a number of seconds") from None
    return max(seconds, MIN_HEARTBEAT_TIMEOUT)


def heartbeat_interval(timeout: float | None = None) -> float:
    """Seconds between a worker's heartbeats: a sixth of the timeout."""
    return (timeout or heartbeat_timeout()) / HEARTBEATS_PER_TIMEOUT


def _utc(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat(timespec="seconds")


def _seconds(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def _shown(when: float) -> str:
    return f"{dt.datetime.fromtimestamp(when, dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


@dataclass(frozen=True)
class StepWorker:
    """The Celery worker that took a step of a run, as it records itself in the run's tags."""

    step_key: str
    run_id: str
    """The run the record was made for: a re-execution copies its parent's tags."""
    name: str
    """`$BREADTH_WORKER_NAME`, else the worker's Celery node name."""
    host: str
    pid: int
    """The process executing the step."""
    heartbeat: float
    """Seconds since the epoch of the last heartbeat."""
    every: float
    """Seconds between two heartbeats."""
    ended: float | None = None
    """When the worker finished the step, however it ended; None while it executes it."""

    @property
    def tag(self) -> str:
        return STEP_WORKER_TAG + self.step_key

    def tags(self) -> dict[str, str]:
        record = {
            "run": self.run_id,
            "worker": self.name,
            "host": self.host,
            "pid": self.pid,
            "heartbeat": _utc(self.heartbeat),
            "every": self.every,
            "ended": None if self.ended is None else _utc(self.ended),
        }
        return {self.tag: json.dumps(record)}

    @classmethod
    def of(cls, run: dg.DagsterRun, step_key: str) -> StepWorker | None:
        """The record of the step's worker, if a worker took that step of this run."""
        text = run.tags.get(STEP_WORKER_TAG + step_key)
        if not text:
            return None
        try:
            record = json.loads(text)
            worker = cls(
                step_key=step_key,
                run_id=record["run"],
                name=record["worker"],
                host=record["host"],
                pid=int(record["pid"]),
                heartbeat=_seconds(record["heartbeat"]),
                every=float(record["every"]),
                ended=_seconds(record["ended"]) if record.get("ended") else None,
            )
        except (KeyError, TypeError, ValueError):
            return None
        return worker if worker.run_id == run.run_id else None

    @classmethod
    def all_of(cls, run: dg.DagsterRun) -> list[StepWorker]:
        """The records of every step of the run that a worker took, by step key."""
        keys = sorted(
            tag[len(STEP_WORKER_TAG) :] for tag in run.tags if tag.startswith(STEP_WORKER_TAG)
        )
        return [worker for key in keys if (worker := cls.of(run, key)) is not None]

    def __str__(self) -> str:
        return f"worker {self.name} on {self.host}"

    def silent_for(self, now: float) -> float:
        return max(0.0, now - self.heartbeat)

    def is_lost(self, now: float, timeout: float) -> bool:
        """Whether the worker stopped answering while it executed the step: no heartbeat for
        the timeout (and for at least three of its own heartbeat intervals)."""
        if self.ended is not None:
            return False
        return self.silent_for(now) > max(timeout, MISSED_HEARTBEATS * self.every)

    def lost_reason(self, now: float) -> str:
        return (
            f"{self} stopped answering (last heartbeat {_shown(self.heartbeat)}, "
            f"{self.silent_for(now):.0f} s ago) while it executed step {self.step_key}"
        )

    def describe(self, now: float, timeout: float) -> str:
        if self.ended is not None:
            return f"{self.step_key} done by {self} at {_shown(self.ended)}"
        state = "stopped answering" if self.is_lost(now, timeout) else "heartbeat"
        return (
            f"{self.step_key} on {self} (pid {self.pid}), {state} {self.silent_for(now):.0f} s ago"
        )


def step_refusal(
    run: dg.DagsterRun | None, run_id: str, step_key: str, now: float | None = None
) -> str | None:
    """Why a worker must not execute the step of `run` that it was just given, or None.

    With late acknowledgement, a step's message comes back from the broker after its visibility
    timeout when the worker that took it never acknowledged it: because that worker died (its
    run has been marked FAILURE by then) or because the step outlasts the timeout (its worker
    still beats). Either way the step must not run a second time. The step of a run still
    STARTED whose worker stopped answering is taken over.
    """
    if run is None:
        return f"run {run_id} does not exist"
    if run.status != dg.DagsterRunStatus.STARTED:
        return f"run {run_id[:8]} is {run.status.value}, not STARTED"
    worker = StepWorker.of(run, step_key)
    if worker is None:
        return None
    now = time.time() if now is None else now
    if worker.ended is not None:
        return f"{worker} already executed {step_key} (ended {_shown(worker.ended)})"
    if not worker.is_lost(now, heartbeat_timeout()):
        return (
            f"{worker} executes {step_key} (pid {worker.pid}, heartbeat "
            f"{worker.silent_for(now):.0f} s ago)"
        )
    return None


@contextlib.contextmanager
def step_heartbeat(
    instance: dg.DagsterInstance,
    run_id: str,
    step_key: str,
    name: str,
    log: Callable[[str], None],
    every: float | None = None,
) -> Iterator[StepWorker]:
    """Records this process as the worker executing the run's step, refreshes its heartbeat
    every `every` seconds from a thread while the block runs, and records the step's end."""
    every = heartbeat_interval() if every is None else every
    worker = StepWorker(step_key, run_id, name, this_host(), os.getpid(), time.time(), every)
    instance.add_run_tags(run_id, worker.tags())
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                instance.add_run_tags(run_id, replace(worker, heartbeat=time.time()).tags())
            except Exception as error:  # the next beat tries again
                log(f"heartbeat of {step_key} of run {run_id[:8]} not recorded: {error!r}")

    thread = threading.Thread(target=beat, name=f"heartbeat-{run_id[:8]}", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(timeout=60)
        now = time.time()
        try:
            instance.add_run_tags(run_id, replace(worker, heartbeat=now, ended=now).tags())
        except Exception as error:
            log(f"end of {step_key} of run {run_id[:8]} not recorded: {error!r}")


def fail_run(instance: dg.DagsterInstance, run: dg.DagsterRun, reason: str) -> str | None:
    """Marks the run FAILURE with the reason and frees its pool slots, unless it has ended in
    the meantime; returns the message, or None when the run had already ended."""
    current = instance.get_run_by_id(run.run_id)
    if current is None or current.is_finished:
        return None
    message = (
        f"run {run.run_id[:8]} ({run.job_name}): {reason}, so it can never finish; marked "
        f"FAILURE by breadth_assets at {_shown(time.time())}"
    )
    instance.report_run_failed(current, message=message)
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return message
