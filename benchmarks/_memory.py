"""Peak memory and CPU of the daemon's process tree, sampled while the benchmark runs, and the
figures printed from them."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import psutil
from _timings import RunTiming

SAMPLE_SECONDS = 0.5
MB = 2**20


@dataclass
class ProcessPeak:
    role: str
    cmdline: str
    rss: int = 0
    cpu: float = 0.0  # user + system seconds at the last sample
    cpu_base: float = 0.0  # at the last reset, so a phase counts only its own CPU


@dataclass
class MemorySampler:
    """Peak RSS per process under the daemon, and per run (run worker plus its children).

    On 1.13 the daemon's code server starts each run as a `multiprocessing` spawn child (the
    run worker), and the multiprocess executor starts each step as a spawn child of that: both
    are "run processes". Roles are told apart by parentage, since the command lines are alike.
    """

    root_pid: int
    peaks: dict[int, ProcessPeak] = field(default_factory=dict)
    run_tree_peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            with contextlib.suppress(psutil.Error):
                self.sample()

    def sample(self) -> None:
        root = psutil.Process(self.root_pid)
        rss: dict[int, int] = {}
        parents: dict[int, int] = {}
        for proc in [root, *root.children(recursive=True)]:
            try:
                rss[proc.pid] = proc.memory_info().rss
                parents[proc.pid] = proc.ppid()
                if proc.pid not in self.peaks:
                    self.peaks[proc.pid] = ProcessPeak("other", " ".join(proc.cmdline()))
                times = proc.cpu_times()
                self.peaks[proc.pid].cpu = times.user + times.system
            except psutil.Error:
                continue
        for pid in rss:  # a child may be listed before its parent: classify until known
            peak = self.peaks[pid]
            if peak.role == "other":
                peak.role = self._role(peak.cmdline, self.peaks.get(parents[pid]))
        tree_rss: dict[int, int] = {}
        for pid, value in rss.items():
            self.peaks[pid].rss = max(self.peaks[pid].rss, value)
            worker = pid
            while worker in parents and self.peaks[worker].role != "run worker":
                worker = parents[worker]
            if worker in self.peaks and self.peaks[worker].role == "run worker":
                tree_rss[worker] = tree_rss.get(worker, 0) + value
        self.run_tree_peak = max([self.run_tree_peak, *tree_rss.values()])

    @staticmethod
    def _role(cmdline: str, parent: ProcessPeak | None) -> str:
        parent_role = parent.role if parent else ""
        if "dagster-daemon" in cmdline:
            return "daemon"
        if " api grpc" in cmdline or "code-server" in cmdline:
            return "code server"
        if "resource_tracker" in cmdline:
            return "other"
        if "execute_run" in cmdline or (
            parent_role == "code server" and "multiprocessing" in cmdline
        ):
            return "run worker"
        if parent_role == "run worker" and "multiprocessing" in cmdline:
            return "run child (step)"
        if parent_role.startswith("run"):
            return "run child (other)"  # e.g. the `tail -F` that captures a step's logs
        return "other"

    def reset(self) -> None:
        """Peaks from now on (the roles learnt so far are kept)."""
        self.sample()
        for peak in self.peaks.values():
            peak.rss = 0
            peak.cpu_base = peak.cpu
        self.run_tree_peak = 0

    def peak(self, *roles: str) -> int:
        return max([0, *(p.rss for p in self.peaks.values() if p.role in roles)])

    def count(self, role: str) -> int:
        return sum(p.role == role and p.cpu > p.cpu_base for p in self.peaks.values())

    def cpu(self, *roles: str) -> float:
        """CPU seconds used since the last reset by the processes of these roles."""
        return sum(p.cpu - p.cpu_base for p in self.peaks.values() if p.role in roles)


def memory_figures(memory: MemorySampler, runs: Sequence[RunTiming]) -> dict[str, float]:
    def peak_of(kind_is_breadth: bool) -> int:
        pids = {pid for run in runs if run.breadth == kind_is_breadth for pid in run.pids}
        return max([0, *(memory.peaks[pid].rss for pid in pids if pid in memory.peaks)])

    return {
        "breadth": peak_of(True),
        "tickers": peak_of(False),
        "cpu worker": memory.cpu("run worker"),
        "cpu step": memory.cpu("run child (step)"),
        "cpu daemon": memory.cpu("daemon", "code server", "other"),
        "steps": memory.count("run child (step)"),
        "run": memory.peak("run worker", "run child (step)"),
        "worker": memory.peak("run worker"),
        "step": memory.peak("run child (step)"),
        "tree": memory.run_tree_peak,
        "daemon": memory.peak("daemon"),
        "code server": memory.peak("code server"),
        "workers": memory.count("run worker"),
    }


def print_memory(figures: Mapping[str, float]) -> None:
    print(
        f"  peak RSS of a single run process:        {figures['run'] / MB:6.0f} MB"
        "   (target <= 600 MB)"
    )
    print(
        f"    by run: breadth {figures['breadth'] / MB:.0f} MB, ticker batches "
        f"{figures['tickers'] / MB:.0f} MB; by process: run worker "
        f"{figures['worker'] / MB:.0f} MB, step process {figures['step'] / MB:.0f} MB; "
        "a run's processes together "
        f"{figures['tree'] / MB:.0f} MB"
    )
    print(
        f"    (not run processes: daemon {figures['daemon'] / MB:.0f} MB, its code server "
        f"{figures['code server'] / MB:.0f} MB)"
    )
    workers, steps = max(1, int(figures["workers"])), max(1, int(figures["steps"]))
    worker_cpu, step_cpu = figures["cpu worker"], figures["cpu step"]
    print(
        f"  CPU seconds: run workers {worker_cpu:.0f} ({worker_cpu / workers:.1f} per run), "
        f"step processes {step_cpu:.0f} ({step_cpu / steps:.1f} each), daemon and its code "
        f"servers {figures['cpu daemon']:.0f}"
    )
