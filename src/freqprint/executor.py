"""Where independent jobs run: this process, a local process pool, or a Ray cluster.

One small interface serves the bulk scan (one checkpoint per job) and the benchmarks' model pools
(one trained model per job): ``submit(fn, *args)`` → a handle, ``wait(handles)`` → the results of
those that finished and the handles still pending, ``close()``; :func:`run_jobs` on top keeps a
bounded number in flight and returns results in job order.

* ``local`` with one worker runs each job in this process when submitted (no pickling, no
  start-up); with more, a pool of *spawned* processes (a forked torch can deadlock), one torch
  thread each.  Its jobs must be picklable by the standard pickler: top-level functions.
* ``ray`` submits to a Ray cluster: ``address=None`` starts a local one with ``workers`` CPUs,
  ``"auto"`` or ``ray://host:port`` joins an existing one.  ``gpus`` per job is a Ray resource
  request (``num_gpus``), so on a cluster with GPUs each training job gets one (Ray sets
  ``CUDA_VISIBLE_DEVICES`` for it) and runs with ``device="cuda"``.  Ray pickles with
  cloudpickle, so closures work, but a large object they capture is copied into every job:
  pass it once as ``shared`` to :func:`run_jobs` instead (one ``ray.put``).

Nothing here knows what a job does; failures are the job's business (a job that must not bring
the run down returns its error as a value).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from freqprint.errors import FreqprintError, InvalidArgument
from freqprint.factory import Factory

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "create_executor", "run_jobs"]


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


class _Ready:
    """A job already run in this process."""

    def __init__(self, value: Any) -> None:
        self.value = value


class LocalExecutor:
    """This process (``workers=1``) or a pool of spawned processes."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise InvalidArgument(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.pool = (
            ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread)
            if workers > 1
            else None
        )

    def put(self, obj: Any) -> Any:
        return obj

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.pool is None:
            return _Ready(fn(*args))
        return self.pool.submit(fn, *args)

    def wait(self, pending: list[Any]) -> tuple[list[tuple[Any, Any]], list[Any]]:
        """``([(handle, result)], still pending)``; at least one finished unless none is pending."""
        ready = [(h, h.value) for h in pending if isinstance(h, _Ready)]
        futures = [h for h in pending if isinstance(h, Future)]
        if ready or not futures:
            return ready, futures
        done, rest = wait(futures, return_when=FIRST_COMPLETED)
        return [(f, f.result()) for f in done], list(rest)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RayExecutor:
    """Jobs as Ray tasks of ``num_cpus=1`` and ``num_gpus=gpus``."""

    def __init__(self, workers: int = 1, address: str | None = None, gpus: float = 0.0) -> None:
        try:
            import ray
        except ImportError:
            raise FreqprintError("the ray executor needs Ray: pip install torch==2.13.0 'freqprint[ray]'") from None
        if workers < 1 or gpus < 0:
            raise InvalidArgument(f"workers must be >= 1 and gpus >= 0, got {workers} and {gpus}")
        self.ray, self.workers, self.gpus = ray, workers, gpus
        self.started = not ray.is_initialized()
        if self.started:
            kw: dict[str, Any] = {"address": address} if address else {"num_cpus": workers, "include_dashboard": False}
            try:
                ray.init(log_to_driver=False, configure_logging=False, **kw)
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise FreqprintError(f"cannot start or join a Ray cluster ({str(e).splitlines()[0]})") from None
        self._remote: dict[int, Any] = {}

    def put(self, obj: Any) -> Any:
        return self.ray.put(obj)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        task = self._remote.get(id(fn))
        if task is None:
            task = self._remote[id(fn)] = self.ray.remote(num_cpus=1, num_gpus=self.gpus)(fn)
        return task.remote(*args)

    def wait(self, pending: list[Any]) -> tuple[list[tuple[Any, Any]], list[Any]]:
        done, rest = self.ray.wait(pending, num_returns=1)
        return list(zip(done, self.ray.get(done))), rest

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Executor = LocalExecutor | RayExecutor


def _local(workers: int = 1, address: str | None = None, gpus: float = 0.0) -> LocalExecutor:
    if gpus:
        raise InvalidArgument("gpus per job is a Ray resource: use the ray executor (locally, device='cuda' trains on the GPU)")
    return LocalExecutor(workers)


def _ray(workers: int = 1, address: str | None = None, gpus: float = 0.0) -> RayExecutor:
    return RayExecutor(workers, address, gpus)


EXECUTORS: Factory[Callable[..., Executor]] = Factory("executor")
EXECUTORS.add("local", _local)
EXECUTORS.add("ray", _ray, needs="ray")


def create_executor(kind: str = "local", workers: int = 1, address: str | None = None, gpus: float = 0.0) -> Executor:
    """``local`` or ``ray`` (module docstring); one ``error:`` line for anything else."""
    return EXECUTORS.build(kind, workers=workers, address=address, gpus=gpus)


def run_jobs(
    executor: Executor,
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    shared: Any = None,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``[fn(shared, *job) for job in jobs]`` on ``executor``, in job order, with at most
    ``2·workers`` jobs in flight; ``shared`` is sent once (``ray.put``), not once per job.
    ``on_result(index, result)`` is called as each finishes (for logs and progress)."""
    ref = executor.put(shared)
    results: list[Any] = [None] * len(jobs)
    index: dict[Any, int] = {}
    pending: list[Any] = []
    limit = 2 * executor.workers

    def drain(until: int) -> None:
        nonlocal pending
        while len(pending) > until:
            finished, pending = executor.wait(pending)
            for h, r in finished:
                i = index.pop(h)
                results[i] = r
                if on_result:
                    on_result(i, r)

    for i, job in enumerate(jobs):
        h = executor.submit(fn, ref, *job)
        index[h] = i
        pending.append(h)
        drain(limit - 1)
    drain(0)
    return results
