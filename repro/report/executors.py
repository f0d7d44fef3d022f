"""Where the report's units of work run: in this process, or as Ray tasks on this machine or a cluster.

`EXECUTORS` is the one table (`repro report --executor`). An executor takes the pending units and yields
each finished cell. The unit that makes a cell saves it into OUT/cells (on a cluster: a shared file system),
so reuse and resume do not depend on the executor, and neither do the numbers: a unit's start codes and
random streams follow from its cells' keys, never from the process that runs it or the order of units.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tqdm import tqdm

from repro.errors import BadInput, ReproError

if TYPE_CHECKING:  # the command line reads EXECUTORS for its choices: keep this module light to import
    from repro.modelsets import ModelSet
    from repro.report.plan import Plan
    from repro.report.run import CellData, Unit, Worker


class Executor(Protocol):
    def run(self, worker: Worker, units: list[Unit], out_dir: Path) -> Iterator[CellData]: ...


class LocalExecutor:
    """One unit after the other in this process; the worker's backends are built once and reused."""

    def run(self, worker: Worker, units: list[Unit], out_dir: Path) -> Iterator[CellData]:
        shown = worker.progress and bool(units)
        for unit in tqdm(units, desc="report", unit="call", disable=not shown):
            yield from worker.run_unit(unit, out_dir)


@dataclass(frozen=True)
class WorkerSpec:
    """What a Ray task needs to build the same worker as the driver's (everything but its backends)."""

    models: ModelSet
    plan: Plan
    backend: str
    device: str
    threads: int  # the task's share of its machine's cores


_WORKERS: dict[bytes, Worker] = {}  # per Ray worker process: backends survive from one task to the next


def _run_unit(spec: WorkerSpec, unit: Unit, out_dir: str) -> list[CellData]:
    from repro.report.run import Worker

    key = pickle.dumps(spec)
    if key not in _WORKERS:
        _WORKERS.clear()  # another report: drop the last one's backends before building new ones
        _WORKERS[key] = Worker(
            spec.models, spec.plan, spec.backend, spec.device, progress=False, threads=spec.threads
        )
    return _WORKERS[key].run_unit(unit, Path(out_dir))


@dataclass(frozen=True)
class RayExecutor:
    """Each unit a Ray task. Without an address a local Ray starts on this machine (and stops after);
    with one the report joins that cluster, whose nodes must have repro installed and see OUT."""

    address: str | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float = 0.0  # fractional values share a GPU between tasks

    @property
    def threads(self) -> int:
        """Each task's CPU threads. Ray does not pin a task to its CPUs: a runtime that sized its pool by the
        machine's cores would run that many threads in every task, and the tasks would fight for the cores."""
        return max(1, math.ceil(self.cpus_per_task))

    def run(self, worker: Worker, units: list[Unit], out_dir: Path) -> Iterator[CellData]:
        if not units:
            return
        ray = _ray()
        started_here = not ray.is_initialized()
        if started_here:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves this machine
            try:
                ray.init(
                    address=self.address,
                    include_dashboard=False,
                    logging_level="error",
                    log_to_driver=False,
                )
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise BadInput(f"--address {self.address}: cannot join the Ray cluster ({e})") from None
        try:
            spec = ray.put(
                WorkerSpec(worker.ms, worker.plan, worker.backend_name, worker.device, self.threads)
            )
            task = ray.remote(_run_unit).options(num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task)
            waiting = [task.remote(spec, unit, str(out_dir.resolve())) for unit in units]
            shown = worker.progress
            with tqdm(total=len(units), desc="report (ray)", unit="call", disable=not shown) as bar:
                while waiting:
                    done, waiting = ray.wait(waiting, num_returns=1)
                    yield from _result(ray, done[0])
                    bar.update()
        finally:
            if started_here:
                ray.shutdown()


def _result(ray, ref) -> list[CellData]:
    """The task's cells; a task's own error (bad input, failed check) is raised as itself."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, ReproError):
            raise e.cause from None
        raise


def _ray():
    try:
        import ray
    except ImportError:
        raise BadInput(
            "--executor ray: Ray is not installed; install it with pip install -e '.[ray]'"
        ) from None
    return ray


@dataclass(frozen=True)
class ExecutorOptions:
    address: str | None = None
    cpus_per_task: float = 1.0
    gpus_per_task: float | None = None  # None: 1 per task on CUDA, 0 on the CPU


def _local(options: ExecutorOptions, device: str) -> Executor:
    if options.address is not None:
        raise BadInput("--address: only --executor ray joins a cluster")
    return LocalExecutor()


def _on_ray(options: ExecutorOptions, device: str) -> Executor:
    _ray()  # missing Ray is found before any sampling, not after
    gpus = options.gpus_per_task
    if gpus is None:
        gpus = 1.0 if device == "cuda" else 0.0
    if not (options.cpus_per_task > 0 and gpus >= 0):
        raise BadInput(
            f"--cpus-per-task must be > 0 and --gpus-per-task >= 0, got {options.cpus_per_task} and {gpus}"
        )
    return RayExecutor(options.address, options.cpus_per_task, gpus)


EXECUTORS: dict[str, Callable[[ExecutorOptions, str], Executor]] = {"local": _local, "ray": _on_ray}


def make_executor(name: str, options: ExecutorOptions, device: str = "cpu") -> Executor:
    if name not in EXECUTORS:
        raise BadInput(f"executor: expected one of {', '.join(EXECUTORS)}, got {name!r}")
    return EXECUTORS[name](options, device)
