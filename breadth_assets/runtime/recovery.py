"""What a crashed run leaves behind, found and cleared through Dagster's own instance APIs.

A run killed with `kill -9` (or by the OOM killer, or a reboot) never reports its end: it stays
STARTED and its pool slots stay claimed, so every later run waits for `price_api` for ever. The
daemon's run monitoring only ends runs that it launched and whose worker it can check, which the
default run launcher cannot. So every run records where it runs (`record_location`, called by the
project's executors), and `repair` marks a run FAILURE when its process on this host is gone, then
frees the slots of every run that has ended. The main job, the daily schedule and
`run_recovery_sensor` call it; `breadth-assets status --repair` does the same on demand.

A run of the Celery deployment has a second process that can die: the worker executing its step
on another machine. The worker records itself in the run's tags when it starts the step and
refreshes a heartbeat there (`step_heartbeat`, breadth_assets.runtime.celery_worker); a run
whose worker has not been heard from for `heartbeat_timeout()` seconds is marked FAILURE with
the worker's name, by the run's own process (breadth_assets.runtime.executor) or by `repair`,
whichever looks first.
A message of that step delivered again later finds its run ended and is dropped
(`step_refusal`), so a step never executes twice at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import dagster as dg
import psutil

from breadth_assets.runtime.step_workers import (
    DEFAULT_HEARTBEAT_TIMEOUT,
    StepWorker,
    fail_run,
    heartbeat_timeout,
    recorded_for,
    this_host,
)

HOST_TAG = "breadth_assets/host"
PID_TAG = "breadth_assets/pid"
PROCESS_START_TAG = "breadth_assets/process_start"
"""The process's start time (seconds since the epoch): a pid reused by a new process differs."""
LOCATION_RUN_TAG = "breadth_assets/location_run"
"""The run the location tags were recorded for: a re-execution copies its parent's tags."""

IN_PROGRESS = (
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)
# psutil adds the kernel's boot time to a process's start: a whole second that moves when the
# wall clock is stepped (NTP on a VM), so two reads of one process can differ by a second. A
# reused pid started within the same second as the dead process is not a real case.
_START_TOLERANCE_SECONDS = 1.5


def location_tags(pid: int | None = None, run_id: str | None = None) -> dict[str, str]:
    """The tags that say where a run executes: this host, the process, its start time (and the
    run they are recorded for)."""
    process = psutil.Process(pid)
    tags = {
        HOST_TAG: this_host(),
        PID_TAG: str(process.pid),
        PROCESS_START_TAG: f"{process.create_time():.3f}",
    }
    if run_id is not None:
        tags[LOCATION_RUN_TAG] = run_id
    return tags


def record_location(instance: dg.DagsterInstance, run_id: str) -> None:
    instance.add_run_tags(run_id, location_tags(run_id=run_id))


@dataclass(frozen=True)
class RunLocation:
    host: str
    pid: int
    process_start: float

    @classmethod
    def of(cls, run: dg.DagsterRun) -> RunLocation | None:
        if not recorded_for(run, LOCATION_RUN_TAG):
            return None
        try:
            return cls(
                run.tags[HOST_TAG], int(run.tags[PID_TAG]), float(run.tags[PROCESS_START_TAG])
            )
        except (KeyError, ValueError):
            return None

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"

    def is_alive(self) -> bool | None:
        """Whether the run's process still runs; None when it is on another host."""
        if self.host != this_host():
            return None
        try:
            started = psutil.Process(self.pid).create_time()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.AccessDenied:
            return True
        return abs(started - self.process_start) <= _START_TOLERANCE_SECONDS


@dataclass(frozen=True)
class SlotClaim:
    pool: str
    run_id: str
    step_key: str
    claimed: bool
    """True for a claimed slot, False for a step still waiting for one."""


@dataclass(frozen=True)
class RunState:
    run: dg.DagsterRun
    location: RunLocation | None
    alive: bool | None
    workers: Sequence[StepWorker] = ()
    """The Celery workers that took the run's steps (a Celery run)."""
    now: float = 0.0
    timeout: float = DEFAULT_HEARTBEAT_TIMEOUT

    @property
    def orphaned(self) -> bool:
        return self.alive is False

    @property
    def lost_workers(self) -> list[StepWorker]:
        return [worker for worker in self.workers if worker.is_lost(self.now, self.timeout)]

    def failure_reason(self, finished_steps: Collection[str] = ()) -> str | None:
        """Why the run can never finish, or None while it can. A lost worker of a step in
        `finished_steps` (the event log says it ended) does not count."""
        if self.orphaned:
            return f"its process ({self.location}) is gone"
        lost = [worker for worker in self.lost_workers if worker.step_key not in finished_steps]
        if lost:
            return "; ".join(worker.lost_reason(self.now) for worker in lost)
        return None

    def describe(self) -> str:
        if self.location is None:
            where = "location not recorded"
        else:
            liveness = {True: "running", False: "process gone", None: "on another host"}
            where = f"{self.location}, {liveness[self.alive]}"
        for worker in self.workers:
            where += f"; {worker.describe(self.now, self.timeout)}"
        run = self.run
        return f"{run.run_id[:8]} {run.job_name} {run.status.value} ({where})"


@dataclass(frozen=True)
class Status:
    runs: Sequence[RunState]
    claims: Sequence[SlotClaim]
    limits: dict[str, int | None]


def in_progress_runs(instance: dg.DagsterInstance, now: float | None = None) -> list[RunState]:
    now = time.time() if now is None else now
    timeout = heartbeat_timeout()
    states = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_PROGRESS))):
        location = RunLocation.of(run)
        alive = location.is_alive() if location else None
        states.append(RunState(run, location, alive, StepWorker.all_of(run), now, timeout))
    return states


def slot_claims(instance: dg.DagsterInstance) -> tuple[list[SlotClaim], dict[str, int | None]]:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return [], {}
    claims: list[SlotClaim] = []
    limits: dict[str, int | None] = {}
    for pool in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(pool)
        limits[pool] = info.slot_count
        claimed = {(slot.run_id, slot.step_key) for slot in info.claimed_slots}
        claims += [SlotClaim(pool, run_id, step, True) for run_id, step in sorted(claimed)]
        claims += [
            SlotClaim(pool, pending.run_id, pending.step_key, False)
            for pending in info.pending_steps
            if (pending.run_id, pending.step_key) not in claimed
        ]
    return claims, limits


def _runs_by_id(instance: dg.DagsterInstance, run_ids: Sequence[str]) -> dict[str, dg.DagsterRun]:
    if not run_ids:
        return {}
    return {run.run_id: run for run in instance.get_runs(dg.RunsFilter(run_ids=list(run_ids)))}


def status(instance: dg.DagsterInstance) -> Status:
    claims, limits = slot_claims(instance)
    return Status(in_progress_runs(instance), claims, limits)


@dataclass(frozen=True)
class Repair:
    failed_runs: Sequence[str]
    """Messages of the runs marked FAILURE because their process or their worker is gone."""
    freed_runs: Sequence[str]
    """Run ids whose slots were freed because the run has ended or does not exist."""

    def lines(self) -> list[str]:
        freed = [f"freed the pool slots of ended run {run_id[:8]}" for run_id in self.freed_runs]
        return [*self.failed_runs, *freed]


def repair(
    instance: dg.DagsterInstance,
    log: Callable[[str], None] | None = None,
    now: float | None = None,
) -> Repair:
    """Marks runs whose process is gone, or whose Celery worker stopped answering, as FAILURE
    and frees the slots of every ended run."""
    failed = []
    for state in in_progress_runs(instance, now):
        reason = state.failure_reason()
        if reason is not None and not state.orphaned:
            reason = state.failure_reason(_finished_steps(instance, state.run.run_id))
        if reason is None:
            continue
        message = fail_run(instance, state.run, reason)
        if message is not None:
            failed.append(message)
    freed = free_slots_of_ended_runs(instance)
    result = Repair(failed, freed)
    for line in result.lines():
        (log or (lambda _: None))(line)
    return result


def _finished_steps(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    """The steps of the run that have ended, by its event log. A step's record in the run's
    tags can miss its end: Dagster rewrites the whole run at each tag write, so two steps of one
    run executing at once on two workers can overwrite each other's record."""
    ends = {dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    return {
        record.dagster_event.step_key
        for record in instance.all_logs(run_id, of_type=ends)
        if record.dagster_event is not None and record.dagster_event.step_key
    }


def free_slots_of_ended_runs(instance: dg.DagsterInstance) -> list[str]:
    claims, _ = slot_claims(instance)
    run_ids = sorted({claim.run_id for claim in claims})
    runs = _runs_by_id(instance, run_ids)
    freed = []
    for run_id in run_ids:
        run = runs.get(run_id)
        if run is None or run.is_finished:
            instance.event_log_storage.free_concurrency_slots_for_run(run_id)
            freed.append(run_id)
    return freed


def status_text(report: Status) -> str:
    """`breadth-assets status`: runs in progress, then each pool's slots and who holds them."""
    lines = [f"runs in progress: {len(report.runs)}"]
    lines += [f"  {state.describe()}" for state in report.runs]
    states = {state.run.run_id: state for state in report.runs}
    for pool, limit in report.limits.items():
        held = [claim for claim in report.claims if claim.pool == pool and claim.claimed]
        waiting = [claim for claim in report.claims if claim.pool == pool and not claim.claimed]
        lines.append(f"pool {pool}: {len(held)} of {limit} slots claimed, {len(waiting)} waiting")
        for claim in held + waiting:
            state = states.get(claim.run_id)
            owner = state.describe() if state else f"{claim.run_id[:8]} (ended or unknown)"
            verb = "holds" if claim.claimed else "waits"
            lines.append(f"  {verb}: {claim.step_key} of run {owner}")
    if not report.limits:
        lines.append("no pools in use")
    orphans = [state for state in report.runs if state.orphaned]
    if orphans:
        lines.append(
            f"{len(orphans)} run(s) whose process is gone: `breadth-assets status --repair`"
        )
    lost = [state for state in report.runs if not state.orphaned and state.lost_workers]
    if lost:
        lines.append(
            f"{len(lost)} run(s) whose Celery worker stopped answering: "
            "`breadth-assets status --repair`"
        )
    return "\n".join(lines)


def holders_text(instance: dg.DagsterInstance, pool: str) -> str:
    """Who holds the pool's slots, for the log line of a step that waits for one."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    runs = _runs_by_id(instance, sorted({slot.run_id for slot in info.claimed_slots}))
    holders = []
    for slot in info.claimed_slots:
        run = runs.get(slot.run_id)
        if run is None:
            holders.append(f"{slot.run_id[:8]} (unknown run)")
            continue
        location = RunLocation.of(run)
        alive = location.is_alive() if location else None
        where = f", {location}" if location else ""
        gone = ", process gone" if alive is False else ""
        for worker in StepWorker.all_of(run):
            if worker.ended is None:
                where += f", {worker.step_key} on {worker}"
        holders.append(f"run {run.run_id[:8]} ({run.job_name}, {run.status.value}{where}{gone})")
    return f"{len(info.claimed_slots)} of {info.slot_count} slots of pool {pool} are taken by " + (
        "; ".join(holders) if holders else "nobody"
    )
