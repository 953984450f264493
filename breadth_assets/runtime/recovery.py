"""What a crashed run leaves behind, found and cleared through Dagster's own instance APIs.

A run killed with `kill -9` (or by the OOM killer, or a reboot) never reports its end: it stays
STARTED and its pool slots stay claimed, so every later run waits for `price_api` for ever. The
daemon's run monitoring only ends runs that it launched and whose worker it can check, which the
default run launcher cannot. So every run records where it runs (`record_location`, called by the
project's executor), and `repair` marks a run FAILURE when its process on this host is gone, then
frees the slots of every run that has ended. The main job, the daily schedule and
`run_recovery_sensor` call it; `breadth-assets status --repair` does the same on demand.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dagster as dg
import psutil

HOST_TAG = "breadth_assets/host"
PID_TAG = "breadth_assets/pid"
PROCESS_START_TAG = "breadth_assets/process_start"
"""The process's start time (seconds since the epoch): a pid reused by a new process differs."""

IN_PROGRESS = (
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
)
# psutil adds the kernel's boot time to a process's start: a whole second that moves when the
# wall clock is stepped (NTP on a VM), so two reads of one process can differ by a second. A
# reused pid started within the same second as the dead process is not a real case.
_START_TOLERANCE_SECONDS = 1.5


def this_host() -> str:
    return socket.gethostname()


def location_tags(pid: int | None = None) -> dict[str, str]:
    """The tags that say where a run executes: this host, the process, its start time."""
    process = psutil.Process(pid)
    return {
        HOST_TAG: this_host(),
        PID_TAG: str(process.pid),
        PROCESS_START_TAG: f"{process.create_time():.3f}",
    }


def record_location(instance: dg.DagsterInstance, run_id: str) -> None:
    instance.add_run_tags(run_id, location_tags())


@dataclass(frozen=True)
class RunLocation:
    host: str
    pid: int
    process_start: float

    @classmethod
    def of(cls, run: dg.DagsterRun) -> RunLocation | None:
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

    @property
    def orphaned(self) -> bool:
        return self.alive is False

    def describe(self) -> str:
        if self.location is None:
            where = "location not recorded"
        else:
            liveness = {True: "running", False: "process gone", None: "on another host"}
            where = f"{self.location}, {liveness[self.alive]}"
        run = self.run
        return f"{run.run_id[:8]} {run.job_name} {run.status.value} ({where})"


@dataclass(frozen=True)
class Status:
    runs: Sequence[RunState]
    claims: Sequence[SlotClaim]
    limits: dict[str, int | None]


def in_progress_runs(instance: dg.DagsterInstance) -> list[RunState]:
    states = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=list(IN_PROGRESS))):
        location = RunLocation.of(run)
        states.append(RunState(run, location, location.is_alive() if location else None))
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
    """Messages of the runs marked FAILURE because their process is gone."""
    freed_runs: Sequence[str]
    """Run ids whose slots were freed because the run has ended or does not exist."""

    def lines(self) -> list[str]:
        freed = [f"freed the pool slots of ended run {run_id[:8]}" for run_id in self.freed_runs]
        return [*self.failed_runs, *freed]


def repair(instance: dg.DagsterInstance, log: Callable[[str], None] | None = None) -> Repair:
    """Marks runs whose process is gone as FAILURE and frees the slots of every ended run."""
    failed = []
    for state in in_progress_runs(instance):
        if not state.orphaned:
            continue
        message = (
            f"run {state.run.run_id[:8]} ({state.run.job_name}): its process ({state.location}) "
            f"is gone, so it can never finish; marked FAILURE by breadth_assets at "
            f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
        )
        instance.report_run_failed(state.run, message=message)
        instance.event_log_storage.free_concurrency_slots_for_run(state.run.run_id)
        failed.append(message)
    freed = free_slots_of_ended_runs(instance)
    result = Repair(failed, freed)
    for line in result.lines():
        (log or (lambda _: None))(line)
    return result


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
        holders.append(f"run {run.run_id[:8]} ({run.job_name}, {run.status.value}{where}{gone})")
    return f"{len(info.claimed_slots)} of {info.slot_count} slots of pool {pool} are taken by " + (
        "; ".join(holders) if holders else "nobody"
    )
